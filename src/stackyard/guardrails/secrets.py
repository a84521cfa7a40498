"""Secrets in what is about to leave: provider API keys, cloud credentials, private keys, JSON
Web Tokens and passwords in connection strings. A request carrying one can be refused (a 400
naming the detector and where it was found), or sent with the secret replaced."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from stackyard.guardrails.pii import API_KEY

PRIVATE_KEY = re.compile(
    r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY( BLOCK)?-----"
)
JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")
AWS_SECRET = re.compile(r"(?i)aws.{0,20}(?:secret|key).{0,20}[\"':= ]+[A-Za-z0-9/+=]{40}\b")
CONNECTION = re.compile(r"\b[a-z][a-z0-9+.-]{1,20}://[^\s:/@]{1,100}:([^\s@/]{3,100})@[^\s/]+")
SLACK_WEBHOOK = re.compile(r"https://hooks\.slack\.com/services/[A-Za-z0-9/]{20,}")

DETECTORS: list[tuple[str, re.Pattern[str]]] = [
    ("private_key", PRIVATE_KEY),
    ("api_key", API_KEY),
    ("jwt", JWT),
    ("aws_secret", AWS_SECRET),
    ("connection_string_password", CONNECTION),
    ("slack_webhook", SLACK_WEBHOOK),
]


@dataclass(frozen=True, slots=True)
class Secret:
    detector: str
    where: str  # e.g. "messages[1].content"
    start: int
    end: int


def scan_text(text: str, where: str) -> list[Secret]:
    found = []
    for name, pattern in DETECTORS:
        for match in pattern.finditer(text):
            found.append(Secret(name, where, match.start(), match.end()))
    return found


def scan_request(body: dict[str, Any]) -> list[Secret]:
    """Every secret in a chat request's messages (text parts, tool results, tool-call
    arguments)."""
    found: list[Secret] = []
    for index, message in enumerate(body.get("messages") or ()):
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, str):
            found += scan_text(content, f"messages[{index}].content")
        elif isinstance(content, list):
            for part_index, part in enumerate(content):
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    where = f"messages[{index}].content[{part_index}].text"
                    found += scan_text(part["text"], where)
        for call_index, call in enumerate(message.get("tool_calls") or ()):
            arguments = (
                (call.get("function") or {}).get("arguments") if isinstance(call, dict) else None
            )
            if isinstance(arguments, str):
                where = f"messages[{index}].tool_calls[{call_index}].function.arguments"
                found += scan_text(arguments, where)
    return found


def mask(text: str) -> str:
    """The text with every secret replaced by ``[SECRET]``."""
    for _, pattern in DETECTORS:
        text = pattern.sub("[SECRET]", text)
    return text


def mask_request(body: dict[str, Any]) -> dict[str, Any]:
    """A copy of a chat request with every secret in its messages replaced."""
    from stackyard.guardrails.redaction import change_texts

    return change_texts(body, mask)
