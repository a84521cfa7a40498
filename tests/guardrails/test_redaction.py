"""A chat request redacted on the way out, and its answer restored: text, tool messages,
tool-call arguments, whole and streamed."""

from __future__ import annotations

import asyncio
from typing import Any

from stackyard.guardrails.redaction import ChunkRestorer, redacted, restore_response
from stackyard.guardrails.vault import Vault

EMAIL = "ada@example.org"


def test_every_place_text_can_hide_is_redacted() -> None:
    vault = Vault()
    body: dict[str, Any] = {
        "model": "m",
        "messages": [
            {"role": "system", "content": "Help the customer."},
            {"role": "user", "content": [{"type": "text", "text": f"I am {EMAIL}"}]},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "lookup", "arguments": f'{{"email": "{EMAIL}"}}'},
                    }
                ],
            },
            {
                "role": "tool",
                "tool_call_id": "c1",
                "content": f"Found {EMAIL}, card 4111111111111111",
            },
        ],
    }
    sent = asyncio.run(redacted(body, vault))
    assert EMAIL not in str(sent)
    assert "4111111111111111" not in str(sent)
    assert sent["messages"][2]["tool_calls"][0]["function"]["arguments"] == '{"email": "<EMAIL_1>"}'
    assert EMAIL in str(body)  # the caller's body is left alone
    answer = {
        "choices": [
            {
                "message": {
                    "content": "Hello <EMAIL_1>",
                    "tool_calls": [
                        {"function": {"name": "mail", "arguments": '{"to": "<EMAIL_1>"}'}}
                    ],
                }
            }
        ]
    }
    restored = restore_response(answer, vault)
    message = restored["choices"][0]["message"]
    assert message["content"] == f"Hello {EMAIL}"
    assert message["tool_calls"][0]["function"]["arguments"] == f'{{"to": "{EMAIL}"}}'


def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def call(arguments: str) -> dict[str, Any]:
    return {"index": 0, "function": {"arguments": arguments}}


def test_a_stream_is_restored_across_chunk_boundaries() -> None:
    vault = Vault()
    vault.redact(EMAIL)
    restorer = ChunkRestorer(vault)
    out = [
        restorer.feed(chunk({"content": "Write to <EMA"})),
        restorer.feed(chunk({"content": "IL_1> now <"})),
        restorer.feed(
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"to": "<EM'}}]})
        ),
        restorer.feed(chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'AIL_1>"}'}}]})),
        restorer.feed(chunk({}, finish="stop")),
    ]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in out)
    arguments = "".join(
        call["function"]["arguments"]
        for c in out
        for call in c["choices"][0]["delta"].get("tool_calls") or []
    )
    assert text == f"Write to {EMAIL} now <"
    assert arguments == f'{{"to": "{EMAIL}"}}'


def test_a_finishing_chunk_with_text_keeps_the_order() -> None:
    vault = Vault()
    vault.redact(EMAIL)
    restorer = ChunkRestorer(vault)
    out = [
        restorer.feed(chunk({"content": "Mail <EMA"})),
        restorer.feed(chunk({"content": "IL_1> or me <"}, finish="stop")),
    ]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in out)
    assert text == f"Mail {EMAIL} or me <"  # the held-back '<' comes last, not first
