"""Secrets: each detector on a planted secret and on a look-alike."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import pytest

from stackyard.guardrails.secrets import (
    MaskedStream,
    SecretWindow,
    mask,
    mask_answer,
    mask_request,
    mask_response,
    scan_request,
    scan_text,
)

JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkFkYSJ9."
    "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)


@pytest.mark.parametrize(
    ("text", "detector"),
    [
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA...", "private_key"),
        ("-----BEGIN OPENSSH PRIVATE KEY-----", "private_key"),
        ("use sk-proj-abcdefghijklmnopqrstuvwx", "api_key"),
        ("AKIAIOSFODNN7EXAMPLE is the id", "api_key"),
        (f"token {JWT}", "jwt"),
        ('aws_secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"', "aws_secret"),
        ("postgresql://admin:s3cr3t-pw@db.internal:5432/app", "connection_string_password"),
        ("https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXXXXXXXXXX", "slack_webhook"),
        ("GITHUB_TOKEN=github_pat_11ABCDEFG0123456789abc_" + "x" * 59, "api_key"),
        ("token glpat-abcdefghij0123456789", "api_key"),
        ("STRIPE_SECRET_KEY=sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc" * 2, "api_key"),
        ("HF_TOKEN=hf_" + "abcdefghij" * 3 + "abcd", "api_key"),
        ("//registry.npmjs.org/:_authToken=npm_" + "a1B2c3D4e5" * 3 + "a1B2c3", "api_key"),
        ("SG." + "a" * 22 + "." + "b" * 43, "api_key"),
        ("ASIAIOSFODNN7EXAMPLE is a temporary key id", "api_key"),
        ('{"aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKE+"}', "aws_secret"),
    ],
)
def test_secrets_are_found(text: str, detector: str) -> None:
    assert detector in {s.detector for s in scan_text(text, "x")}
    assert "[SECRET]" in mask(text)


@pytest.mark.parametrize(
    "text",
    [
        "-----BEGIN PUBLIC KEY-----",
        "postgresql://db.internal:5432/app",
        "see https://example.com/path?a=b",
        "the word eyJ alone",
        "sk-short",
        "DATABASE_URL=postgres://app:${DB_PASSWORD}@db.internal/prod",
        "postgres://app:<password>@db.internal/prod",
        "redis://default:{password}@cache:6379/0",
        "Use scikit-learn (sk-learn is not its name) and a sk_user_count variable.",
    ],
)
def test_look_alikes_are_not_secrets(text: str) -> None:
    assert scan_text(text, "x") == []


AWS_ARGUMENTS = '{"k": "AKIAIOSFODNN7EXAMPLE"}'


def text_part(text: str) -> dict[str, str]:
    return {"type": "text", "text": text}


def test_a_request_is_scanned_everywhere_text_can_hide() -> None:
    body = {
        "model": "m",
        "messages": [
            {
                "role": "user",
                "content": [{"type": "text", "text": "hi"}, {"type": "text", "text": JWT}],
            },
            {
                "role": "assistant",
                "tool_calls": [
                    {"function": {"name": "f", "arguments": '{"k": "AKIAIOSFODNN7EXAMPLE"}'}}
                ],
            },
        ],
    }
    found = scan_request(body)
    assert [(s.detector, s.where) for s in found] == [
        ("jwt", "messages[0].content[1].text"),
        ("api_key", "messages[1].tool_calls[0].function.arguments"),
    ]
    masked = mask_request(body)
    assert JWT not in str(masked)
    assert "AKIA" not in str(masked)


# -- secrets in answers -------------------------------------------------------------------

KEY = "sk-proj-" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6"
JWT_TOKEN = (
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
)
PEM_BODY = "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gunVTLw"
PASSWORD = "hunter2pass"
AWS_VALUE = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
ANSWER = (
    f"Here is the key {KEY} and a token {JWT_TOKEN}.\nThe key:\n"
    f"-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}\n-----END RSA PRIVATE KEY-----\n"
    f"Connect with postgres://admin:{PASSWORD}@db.internal:5432/app and "
    f'aws_secret_access_key = "{AWS_VALUE}" ok. Nothing else here to see at all, really.'
)
VALUES = [KEY, JWT_TOKEN, PEM_BODY, PASSWORD, AWS_VALUE]


def test_an_answer_is_masked_whole_key_blocks_included() -> None:
    masked, count = mask_answer(ANSWER)
    assert count == 5
    assert not any(value in masked for value in VALUES)
    assert masked.startswith("Here is the key [SECRET] and a token [SECRET].")
    assert masked.endswith("ok. Nothing else here to see at all, really.")
    assert mask_answer("A plain answer about sk-learn and eyJ-less tokens.") == (
        "A plain answer about sk-learn and eyJ-less tokens.",
        0,
    )


def test_a_stream_is_masked_the_same_however_it_is_split() -> None:
    whole, _ = mask_answer(ANSWER)
    for first in range(len(ANSWER) + 1):
        for second in range(first, len(ANSWER) + 1, 5):
            window = SecretWindow()
            pieces = [ANSWER[:first], ANSWER[first:second], ANSWER[second:]]
            out = "".join(window.feed(p) for p in pieces) + window.flush()
            assert out == whole, (first, second)


def test_a_stream_token_by_token_never_releases_part_of_a_secret() -> None:
    window = SecretWindow()
    released = ""
    for i in range(0, len(ANSWER), 3):
        released += window.feed(ANSWER[i : i + 3])
        for value in VALUES:  # not even a long prefix of a secret gets out early
            assert value[: len(value) // 2] not in released
    assert released + window.flush() == mask_answer(ANSWER)[0]


def test_plain_text_is_held_back_only_by_the_window() -> None:
    window = SecretWindow()
    text = "word " * 100
    released = window.feed(text)
    assert released == text[: len(text) - 128]
    assert window.flush() == text[len(text) - 128 :]


def test_a_private_key_cut_short_is_masked_at_the_end() -> None:
    window = SecretWindow()
    out = window.feed(f"oops -----BEGIN PRIVATE KEY-----\n{PEM_BODY}") + window.flush()
    assert out == "oops [SECRET]"


def test_a_completions_choices_and_tool_calls_are_masked() -> None:
    result: dict[str, Any] = {
        "choices": [
            {
                "message": {
                    "content": f"use {KEY}",
                    "tool_calls": [
                        {"function": {"name": "f", "arguments": f'{{"token": "{JWT_TOKEN}"}}'}}
                    ],
                }
            }
        ]
    }
    assert mask_response(result) == 2
    message = result["choices"][0]["message"]
    assert message["content"] == "use [SECRET]"
    assert message["tool_calls"][0]["function"]["arguments"] == '{"token": "[SECRET]"}'


async def test_a_chunk_stream_is_masked_per_choice_and_released_at_its_end() -> None:
    pieces = [ANSWER[i : i + 7] for i in range(0, len(ANSWER), 7)]

    async def chunks() -> AsyncGenerator[dict[str, Any], None]:
        yield {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}
        for piece in pieces:
            yield {"choices": [{"index": 0, "delta": {"content": piece}}]}
        yield {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}

    stream = MaskedStream()
    text = "".join(
        [chunk["choices"][0]["delta"].get("content") or "" async for chunk in stream.wrap(chunks())]
    )
    assert text == mask_answer(ANSWER)[0]
    assert stream.masked == 5
