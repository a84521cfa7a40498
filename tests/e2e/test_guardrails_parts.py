"""Every part of every message leaves redacted, through each door of a real gateway: an earlier
turn's tool-call arguments and tool results on chat completions, function calls and their
outputs on the Responses API, tool-use inputs, tool results and documents on the Messages API
(translated, and passed through to Anthropic). Arguments reach the provider as valid JSON."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import pytest

from tests.conformance.recordings import an_message
from tests.conftest import GatewayProcess, openai_sdk
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.replay_upstream import ReplayUpstream

pytestmark = pytest.mark.e2e

EMAIL = "grace.hopper@example.org"
#: A private person's name, of the kind the entity tagger missed inside raw JSON
#: ('{"query": "find Oskar Lindqvist"}'); not a public figure's, which is left alone.
ARGUMENTS = json.dumps({"query": "find Oskar Lindqvist", "limit": 3})
NAME_WORDS = ("Oskar", "Lindqvist")


@pytest.fixture(scope="module")
def gateway(
    fake_openai: FakeOpenAI, replay: ReplayUpstream, gateway_factory: Any
) -> GatewayProcess:
    gw: GatewayProcess = gateway_factory(
        {
            "models": [
                {
                    "name": "echo",
                    "provider": "openai-compatible",
                    "api_base": fake_openai.base_url("parts-outside"),
                    "external": True,
                },
                {
                    "name": "claude",
                    "provider": "anthropic",
                    "model": "claude-sonnet-4-5",
                    "api_base": replay.base_url("parts-claude"),
                    "api_key": "sk-ant",
                },
            ],
            "guardrails": {"pii": {"redact": "external"}},
        }
    )
    return gw


def upstream_body(fake: FakeOpenAI) -> dict[str, Any]:
    body = fake.requests_for("parts-outside")[-1].body
    assert isinstance(body, dict)
    return body


def assert_clean(sent: Any) -> None:
    text = json.dumps(sent, ensure_ascii=False)
    for value in (EMAIL, *NAME_WORDS):
        assert value not in text, text


def sent_arguments(body: dict[str, Any]) -> list[Any]:
    """Each tool call's arguments in a chat request, parsed (they must be JSON)."""
    return [
        json.loads(call["function"]["arguments"])
        for message in body["messages"]
        for call in message.get("tool_calls") or ()
    ]


def test_chat_an_earlier_turns_tool_call_and_tool_result(
    gateway: GatewayProcess, fake_openai: FakeOpenAI
) -> None:
    messages: Any = [
        {"role": "user", "content": "Look the author up."},
        {
            "role": "assistant",
            "content": f"Searching, then mailing {EMAIL}.",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "search", "arguments": ARGUMENTS},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": f"Found: {EMAIL}"},
        {"role": "user", "content": "Thanks."},
    ]
    with openai_sdk(gateway) as client:
        client.chat.completions.create(model="echo", messages=messages)
    body = upstream_body(fake_openai)
    assert_clean(body)
    assert sent_arguments(body) == [{"query": "find <PERSON_1>", "limit": 3}]


def test_chat_a_predicted_output_and_the_metadata(
    gateway: GatewayProcess, fake_openai: FakeOpenAI
) -> None:
    """Both are passed on to an OpenAI-compatible provider, so both leave redacted."""
    with openai_sdk(gateway) as client:
        client.chat.completions.create(
            model="echo",
            messages=[{"role": "user", "content": "Fix the typo in the letter."}],
            prediction={"type": "content", "content": f"Dear Oskar Lindqvist, write to {EMAIL}."},
            metadata={"contact": EMAIL},
        )
    body = upstream_body(fake_openai)
    assert_clean(body)
    assert body["prediction"]["content"] == "Dear <PERSON_1>, write to <EMAIL_1>."
    assert body["metadata"] == {"contact": "<EMAIL_1>"}


def test_responses_function_calls_and_their_outputs(
    gateway: GatewayProcess, fake_openai: FakeOpenAI
) -> None:
    """The Responses door makes a chat request of its input items: a function call becomes an
    assistant's tool call, its output a tool message, and both are redacted as such."""
    items: Any = [
        {"role": "user", "content": "Look the author up."},
        {
            "type": "function_call",
            "call_id": "call_1",
            "name": "search",
            "arguments": ARGUMENTS,
        },
        {"type": "function_call_output", "call_id": "call_1", "output": f"Found: {EMAIL}"},
    ]
    with openai_sdk(gateway) as client:
        client.responses.create(model="echo", input=items)
    body = upstream_body(fake_openai)
    assert_clean(body)
    assert sent_arguments(body) == [{"query": "find <PERSON_1>", "limit": 3}]


def messages_request(document: bool) -> list[Any]:
    """A conversation with a name and an email in every part; ``document``: with a plain-text
    document too (only Anthropic takes documents; translation refuses them)."""
    letter = {
        "type": "document",
        "source": {"type": "text", "media_type": "text/plain", "data": f"Letter to {EMAIL}."},
    }
    return [
        {"role": "user", "content": "Look the author up."},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": f"Searching, then mailing {EMAIL}."},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "search",
                    "input": json.loads(ARGUMENTS),
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": f"Found: {EMAIL}"},
                *([letter] if document else []),
                {"type": "text", "text": "Summarise what you found."},
            ],
        },
    ]


def anthropic_sdk(gateway: GatewayProcess) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key="unused", max_retries=0)


def test_messages_tool_use_and_tool_result_translated(
    gateway: GatewayProcess, fake_openai: FakeOpenAI
) -> None:
    with anthropic_sdk(gateway) as client:
        client.messages.create(model="echo", max_tokens=50, messages=messages_request(False))
    body = upstream_body(fake_openai)
    assert_clean(body)
    assert sent_arguments(body) == [{"query": "find <PERSON_1>", "limit": 3}]


def test_messages_tool_use_tool_result_and_a_document_for_anthropic_itself(
    gateway: GatewayProcess, replay: ReplayUpstream
) -> None:
    replay.script("parts-claude", an_message([{"type": "text", "text": "Done."}], "end_turn"))
    with anthropic_sdk(gateway) as client:
        client.messages.create(model="claude", max_tokens=50, messages=messages_request(True))
    [sent] = replay.take("parts-claude")
    assert_clean(sent.body)
    blocks = sent.body["messages"][1]["content"]
    assert blocks[1]["input"] == {"query": "find <PERSON_1>", "limit": 3}
    letter = sent.body["messages"][2]["content"][1]
    assert letter["source"]["data"] == "Letter to <EMAIL_1>."


#: A private person's details, then a question about public subjects, in two messages (each
#: message is read apart; within one text a private sentence makes its neighbours' reading
#: stricter, since the model's read spans both).
PRIVATE = "My landlord Pedro Alvarez lives at 14 Calle Mayor, Madrid, and works for Acme Corp."
PUBLIC = "Why did the Ottoman Empire move its capital from Bursa to Edirne?"
TURNS: Any = [
    {"role": "user", "content": PRIVATE},
    {"role": "assistant", "content": "Noted."},
    {"role": "user", "content": PUBLIC},
]


@pytest.mark.parametrize("door", ["chat", "responses", "messages"])
def test_each_door_leaves_public_subjects_and_redacts_a_private_persons_details(
    gateway: GatewayProcess, fake_openai: FakeOpenAI, door: str
) -> None:
    """The sentence gate (``public_names``, on by default) serves every door: the places in a
    question about public subjects reach the provider, a private person's details do not."""
    if door == "chat":
        with openai_sdk(gateway) as client:
            client.chat.completions.create(model="echo", messages=TURNS)
    elif door == "responses":
        with openai_sdk(gateway) as client:
            client.responses.create(model="echo", input=TURNS)
    else:
        with anthropic_sdk(gateway) as client:
            client.messages.create(model="echo", max_tokens=50, messages=TURNS)
    text = json.dumps(upstream_body(fake_openai), ensure_ascii=False)
    assert "from Bursa to Edirne?" in text, text
    for private in ("Pedro", "Alvarez", "14 Calle", "Acme"):
        assert private not in text, text
