"""The parts of a request the text rails cannot read, found in each door's shape."""

from __future__ import annotations

from typing import Any

from stackyard.guardrails.unscannable import chat_parts, described, messages_parts, token_inputs

PNG = "data:image/png;base64,iVBORw0KGgo="


def test_chat_images_audio_files_and_an_earlier_audio_answer() -> None:
    body: dict[str, Any] = {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in these?"},
                    {"type": "image_url", "image_url": {"url": PNG}},
                    {"type": "input_audio", "input_audio": {"data": "UklGR", "format": "wav"}},
                    {"type": "file", "file": {"file_id": "file-abc"}},
                ],
            },
            {"role": "assistant", "content": None, "audio": {"id": "audio_1"}},
            {"role": "user", "content": "And now?"},
        ]
    }
    assert chat_parts(body) == [
        ("messages[1].content[1]", "image"),
        ("messages[1].content[2]", "audio"),
        ("messages[1].content[3]", "file"),
        ("messages[2].audio", "audio"),
    ]
    assert described(chat_parts(body))[0] == "messages[1].content[1] (image)"


def test_chat_text_alone_has_none() -> None:
    body: dict[str, Any] = {
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "hi"}]},
            {"role": "assistant", "content": [{"type": "refusal", "refusal": "no"}]},
            {"role": "user", "content": "plain"},
            "not a message",
        ]
    }
    assert chat_parts(body) == []


def test_messages_images_documents_and_nested_blocks() -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "x"}}
    body: dict[str, Any] = {
        "system": [{"type": "text", "text": "Be brief."}],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Read these."},
                    image,
                    {"type": "document", "source": {"type": "base64", "data": "JVBER"}},
                    {"type": "document", "source": {"type": "url", "url": "https://x/a.pdf"}},
                    {"type": "document", "source": {"type": "text", "data": "plain text"}},
                    {
                        "type": "document",
                        "source": {
                            "type": "content",
                            "content": [{"type": "text", "text": "a"}, image],
                        },
                    },
                    {"type": "container_upload", "file_id": "file_1"},
                ],
            },
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t1", "name": "shot", "input": {}}],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "t1",
                        "content": [{"type": "text", "text": "the screenshot:"}, image],
                    },
                    {"type": "tool_result", "tool_use_id": "t2", "content": "text only"},
                ],
            },
        ],
    }
    assert messages_parts(body) == [
        ("messages[0].content[1]", "image"),
        ("messages[0].content[2]", "file"),
        ("messages[0].content[3]", "file"),
        ("messages[0].content[5].source.content[1]", "image"),
        ("messages[0].content[6]", "file"),
        ("messages[2].content[0].content[1]", "image"),
    ]


def test_messages_an_image_in_the_system_prompt() -> None:
    body: dict[str, Any] = {
        "system": [{"type": "image", "source": {"type": "url", "url": "https://x/a.png"}}],
        "messages": [{"role": "user", "content": "hi"}],
    }
    assert messages_parts(body) == [("system[0]", "image")]


def test_embeddings_token_ids() -> None:
    assert token_inputs({"input": "text"}) == []
    assert token_inputs({"input": ["a", "b"]}) == []
    assert token_inputs({"input": [15339, 1917]}) == [("input", "token ids")]
    assert token_inputs({"input": [[15339], "text", [1917]]}) == [
        ("input[0]", "token ids"),
        ("input[2]", "token ids"),
    ]
    assert token_inputs({"input": []}) == []
