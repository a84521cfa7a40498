"""Secrets: each detector on a planted secret and on a look-alike."""

from __future__ import annotations

import pytest

from stackyard.guardrails.secrets import mask, mask_request, scan_request, scan_text

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
