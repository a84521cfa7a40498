"""Every part of a request that can carry text is redacted, in the chat shape (which the
Responses door's requests take too) and in Anthropic's Messages shape; tool-call arguments stay
valid JSON both ways, whole and streamed."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from stackyard.guardrails.anthropic_shape import EventTransformer, change_request
from stackyard.guardrails.redaction import (
    ChunkRestorer,
    change_inputs,
    change_json,
    change_name,
    redacted,
    restore_response,
)
from stackyard.guardrails.vault import StreamRestorer, Vault

EMAIL = "ada@example.org"
PHONE = "+44 20 7946 0958"


def sent(body: dict[str, Any]) -> dict[str, Any]:
    return asyncio.run(redacted(body, Vault()))


def chat(*messages: dict[str, Any]) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": "hi"}, *messages]}


def test_an_earlier_assistant_turns_text_is_redacted() -> None:
    out = sent(chat({"role": "assistant", "content": f"I wrote to {EMAIL}."}))
    assert out["messages"][1]["content"] == "I wrote to <EMAIL_1>."


def test_an_assistants_refusal_is_redacted_as_a_field_and_as_a_part() -> None:
    out = sent(
        chat(
            {"role": "assistant", "content": None, "refusal": f"I cannot mail {EMAIL}."},
            {"role": "assistant", "content": [{"type": "refusal", "refusal": f"Not {EMAIL}."}]},
        )
    )
    assert EMAIL not in json.dumps(out)
    assert out["messages"][1]["refusal"] == "I cannot mail <EMAIL_1>."
    assert out["messages"][2]["content"] == [{"type": "refusal", "refusal": "Not <EMAIL_1>."}]


def test_earlier_tool_call_arguments_are_redacted_inside_their_strings() -> None:
    """The phone number follows an escaped line break: read as raw JSON text, ``\\n+44`` hid
    the country code from the pattern (``n`` is a word character)."""
    arguments = json.dumps({"to": EMAIL, "note": f"call\n{PHONE}", "count": 2}, indent=1)
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": arguments}}
    out = sent(chat({"role": "assistant", "content": None, "tool_calls": [call]}))
    sent_arguments = out["messages"][1]["tool_calls"][0]["function"]["arguments"]
    assert json.loads(sent_arguments) == {"to": "<EMAIL_1>", "note": "call\n<PHONE_1>", "count": 2}
    assert sent_arguments.startswith('{\n "to": "<EMAIL_1>",')  # the layout is kept
    assert "44" not in sent_arguments


def test_a_legacy_function_call_and_a_custom_tool_call_are_redacted() -> None:
    out = sent(
        chat(
            {
                "role": "assistant",
                "content": None,
                "function_call": {"name": "mail", "arguments": json.dumps({"to": EMAIL})},
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "c2", "type": "custom", "custom": {"name": "sh", "input": EMAIL}}
                ],
            },
        )
    )
    assert EMAIL not in json.dumps(out)
    assert json.loads(out["messages"][1]["function_call"]["arguments"]) == {"to": "<EMAIL_1>"}
    assert out["messages"][2]["tool_calls"][0]["custom"]["input"] == "<EMAIL_1>"


def test_the_end_user_identifier_is_redacted_when_it_is_personal() -> None:
    out = sent({**chat(), "user": EMAIL, "safety_identifier": f"mail {EMAIL}"})
    assert out["user"] == "<EMAIL_1>"
    assert out["safety_identifier"] == "mail <EMAIL_1>"
    opaque = sent({**chat(), "user": "u-5f2a9c"})
    assert opaque["user"] == "u-5f2a9c"  # an opaque id, as the providers ask for, is left
    embedded = asyncio.run(redacted({"input": "hi", "user": EMAIL}, Vault(), change_inputs))
    assert embedded["user"] == "<EMAIL_1>"


def test_a_messages_name_is_redacted_in_the_shape_openai_allows() -> None:
    def names(text: str) -> str:
        return text.replace("Ada Lovelace", "<PERSON_1>")

    assert change_name("Ada_Lovelace", names) == "PERSON_1"
    assert change_name("support_bot", names) == "support_bot"  # nothing found: as it was
    out = sent(chat({"role": "user", "name": f"{EMAIL}", "content": "hello"}))
    assert out["messages"][1]["name"] == "EMAIL_1"
    assert out["messages"][0] == {"role": "user", "content": "hi"}


def test_a_tool_result_is_redacted_as_text_and_as_parts() -> None:
    out = sent(
        chat(
            {"role": "tool", "tool_call_id": "c1", "content": f"Found {EMAIL}"},
            {"role": "tool", "tool_call_id": "c2", "content": [{"type": "text", "text": EMAIL}]},
        )
    )
    assert out["messages"][1]["content"] == "Found <EMAIL_1>"
    assert out["messages"][2]["content"] == [{"type": "text", "text": "<EMAIL_1>"}]


def test_arguments_that_are_not_json_are_redacted_as_text() -> None:
    assert change_json(f"to {EMAIL}", lambda t: t.replace(EMAIL, "<EMAIL_1>")) == "to <EMAIL_1>"
    assert change_json('{"a": "x", "b": ["x", {"x": "x"}]}', lambda t: "y") == (
        '{"a": "y", "b": ["y", {"x": "y"}]}'
    )


ADDRESS = '221B Baker Street\nLondon "NW1"'


def vault_with_an_address() -> Vault:
    vault = Vault()
    vault._placeholder("ADDRESS", ADDRESS)
    return vault


def test_a_value_put_back_into_arguments_is_escaped() -> None:
    answer = {
        "choices": [
            {
                "message": {
                    "content": "<ADDRESS_1>",
                    "tool_calls": [
                        {"function": {"name": "f", "arguments": '{"a": "<ADDRESS_1>"}'}}
                    ],
                    "function_call": {"name": "f", "arguments": '{"a": "<ADDRESS_1>"}'},
                }
            }
        ]
    }
    message = restore_response(answer, vault_with_an_address())["choices"][0]["message"]
    assert message["content"] == ADDRESS
    assert json.loads(message["tool_calls"][0]["function"]["arguments"]) == {"a": ADDRESS}
    assert json.loads(message["function_call"]["arguments"]) == {"a": ADDRESS}


def test_a_value_put_back_into_streamed_arguments_is_escaped() -> None:
    restorer = ChunkRestorer(vault_with_an_address())
    pieces = ['{"a": "<ADD', 'RESS_1>"}']
    out = []
    for number, piece in enumerate(pieces):
        call = {"index": 0, "function": {"arguments": piece}}
        choice: dict[str, Any] = {"index": 0, "delta": {"tool_calls": [call]}}
        if number == len(pieces) - 1:
            choice["finish_reason"] = "tool_calls"
        chunk = restorer.feed({"choices": [choice]})
        for call in chunk["choices"][0]["delta"].get("tool_calls", ()):
            out.append(call["function"]["arguments"])
    assert json.loads("".join(out)) == {"a": ADDRESS}


def test_every_part_of_a_messages_request_is_redacted() -> None:
    vault = Vault()
    body = {
        "model": "m",
        "system": [{"type": "text", "text": f"The user is {EMAIL}."}],
        "messages": [
            {"role": "user", "content": f"I am {EMAIL}"},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": f"Mailing {EMAIL}"},
                    {"type": "tool_use", "id": "t1", "name": "mail", "input": {"to": [EMAIL]}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "t1", "content": f"sent {EMAIL}"},
                    {
                        "type": "tool_result",
                        "tool_use_id": "t2",
                        "content": [
                            {"type": "text", "text": EMAIL},
                            {
                                "type": "search_result",
                                "source": "https://example.org/a",
                                "title": EMAIL,
                                "content": [{"type": "text", "text": EMAIL}],
                            },
                        ],
                    },
                    {
                        "type": "document",
                        "title": f"Letter to {EMAIL}",
                        "context": EMAIL,
                        "source": {"type": "text", "media_type": "text/plain", "data": EMAIL},
                    },
                    {
                        "type": "document",
                        "source": {"type": "content", "content": [{"type": "text", "text": EMAIL}]},
                    },
                ],
            },
        ],
        "metadata": {"user_id": EMAIL},
    }
    out = asyncio.run(redacted(body, vault, change_request))
    assert EMAIL not in json.dumps(out)
    assert out["metadata"] == {"user_id": "<EMAIL_1>"}
    assert out["messages"][1]["content"][1]["input"] == {"to": ["<EMAIL_1>"]}
    assert out["messages"][2]["content"][2]["source"]["data"] == "<EMAIL_1>"
    assert out["messages"][2]["content"][1]["content"][1]["source"] == "https://example.org/a"


def test_server_and_mcp_tool_blocks_of_a_messages_request_are_redacted() -> None:
    """An earlier turn's web search (its query), and an MCP tool's call and result, as Anthropic
    returns them and the client sends them back."""
    body = {
        "model": "m",
        "messages": [
            {"role": "user", "content": "Find the address."},
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "server_tool_use",
                        "id": "s1",
                        "name": "web_search",
                        "input": {"query": f"who owns {EMAIL}"},
                    },
                    {
                        "type": "mcp_tool_use",
                        "id": "m1",
                        "name": "lookup",
                        "server_name": "crm",
                        "input": {"email": EMAIL},
                    },
                    {
                        "type": "mcp_tool_result",
                        "tool_use_id": "m1",
                        "is_error": False,
                        "content": [{"type": "text", "text": f"Phone {PHONE}"}],
                    },
                ],
            },
        ],
    }
    out = asyncio.run(redacted(body, Vault(), change_request))
    blocks = out["messages"][1]["content"]
    assert blocks[0]["input"] == {"query": "who owns <EMAIL_1>"}
    assert blocks[1]["input"] == {"email": "<EMAIL_1>"}
    assert blocks[2]["content"] == [{"type": "text", "text": "Phone <PHONE_1>"}]


def test_a_value_put_back_into_a_streamed_tool_input_is_escaped() -> None:
    vault = vault_with_an_address()
    transformer = EventTransformer(
        lambda: StreamRestorer(vault), lambda: StreamRestorer(vault, True)
    )
    out = []
    for piece in ['{"a": "<ADD', 'RESS_1>"}']:
        delta = {"type": "input_json_delta", "partial_json": piece}
        event = ("content_block_delta", {"type": "content_block_delta", "index": 1, "delta": delta})
        out += transformer.feed(event)
    out += transformer.feed(("content_block_stop", {"type": "content_block_stop", "index": 1}))
    text = "".join(e[1]["delta"]["partial_json"] for e in out if e[0] == "content_block_delta")
    assert json.loads(text) == {"a": ADDRESS}


def test_a_predicted_output_and_the_metadata_values_are_redacted() -> None:
    """Both go to an OpenAI-compatible provider as they are: the predicted output is text the
    answer is expected to repeat (its placeholders come back and are restored), the metadata
    is kept with a stored completion."""
    body = chat()
    body["prediction"] = {"type": "content", "content": f"Write to {EMAIL} today."}
    body["metadata"] = {"contact": PHONE, "ticket": "T-1"}
    out = sent(body)
    assert out["prediction"] == {"type": "content", "content": "Write to <EMAIL_1> today."}
    assert out["metadata"] == {"contact": "<PHONE_1>", "ticket": "T-1"}
    parts = chat()
    parts["prediction"] = {"type": "content", "content": [{"type": "text", "text": EMAIL}]}
    assert sent(parts)["prediction"]["content"] == [{"type": "text", "text": "<EMAIL_1>"}]
