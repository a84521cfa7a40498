"""Redaction of stored bodies: planted PII and secrets go, ordinary text stays."""

from __future__ import annotations

from typing import Any

import pytest

from stackyard.guardrails.pii import luhn
from stackyard.observability.redact import Redactor, known, strings


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to jane.doe+work@mail.example.co.uk today", "write to [EMAIL] today"),
        ("card 4111 1111 1111 1111 thanks", "card [CARD] thanks"),
        ("card 4111-1111-1111-1111", "card [CARD]"),
        ("amex 378282246310005", "amex [CARD]"),
        ("call +1 415 555 2671", "call [PHONE]"),
        ("call (415) 555-2671", "call [PHONE]"),
        ("call +447911123456", "call [PHONE]"),
        ("key sk-proj-abcdefghijklmnopqrstu", "key [API_KEY]"),
        ("key sk-ant-api03-abcdefghijklmnop", "key [API_KEY]"),
        ("aws AKIAIOSFODNN7EXAMPLE", "aws [API_KEY]"),
        ("Authorization: Bearer abcdefghijklmnopqrstuvwx", "Authorization: [API_KEY]"),
    ],
)
def test_planted_pii_is_replaced(text: str, expected: str) -> None:
    assert Redactor().text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "The year 2024 had 366 days.",
        "version 1.2.3 of order 12345",
        "temperature 0.7, top_p 0.9",
        "an id like 0af7651916cd43dd8448eb211c80319c",
    ],
)
def test_ordinary_text_is_kept(text: str) -> None:
    assert Redactor().text(text) == text


def test_luhn() -> None:
    assert luhn("4111111111111111")
    assert not luhn("4111111111111112")


def test_values_are_redacted_in_nested_json_but_keys_and_numbers_are_not() -> None:
    body: dict[str, Any] = {
        "model": "m",
        "max_tokens": 4111111111111111,
        "messages": [{"role": "user", "content": "mail bob@example.com"}],
        "bob@example.com": "key",
    }
    redacted = Redactor().value(body)
    assert redacted == {
        "model": "m",
        "max_tokens": 4111111111111111,
        "messages": [{"role": "user", "content": "mail [EMAIL]"}],
        "bob@example.com": "key",
    }
    assert body["messages"][0]["content"] == "mail bob@example.com"  # the original is kept


def test_operator_patterns_and_pii_off() -> None:
    redactor = Redactor(pii=False, patterns=[r"ACME-\d{6}"])
    assert redactor.text("order ACME-123456 for bob@example.com") == (
        "order [REDACTED] for bob@example.com"
    )
    assert not Redactor(pii=False).active


def test_the_guardrails_recognisers_are_reused() -> None:
    text = "IBAN GB82 WEST 1234 5698 7654 32, SSN 123-45-6789, from 192.168.1.20 and 2001:db8::7"
    assert Redactor().text(text) == "IBAN [IBAN], SSN [SSN], from [IP] and [IP]"
    # this machine's own address names no one (the guardrails' shapes say so too)
    assert Redactor().text("listening on ::1 and 127.0.0.1") == "listening on ::1 and 127.0.0.1"


def test_what_the_pii_rail_found_is_redacted_longest_first_with_the_patterns() -> None:
    also = known({"Ada Lovelace": "PERSON", "Ada": "PERSON", "Acme Ltd": "ORGANIZATION"})
    body = {"messages": [{"content": "Ada Lovelace and Ada of Acme Ltd, ada@example.org"}]}
    out = Redactor().value(body, also)
    assert out == {"messages": [{"content": "[PERSON] and [PERSON] of [ORGANIZATION], [EMAIL]"}]}
    assert body["messages"][0]["content"].startswith("Ada Lovelace")  # a copy
    assert Redactor(pii=False).value("Ada Lovelace", also) == "[PERSON]"


def test_strings_are_a_json_values_texts_once_each_keys_left_out() -> None:
    body = {
        "messages": [{"role": "user", "content": "Hi Ada"}, {"role": "user", "content": "Hi Ada"}],
        "n": 1,
        "stop": ["x", "END"],
        "Grace": None,
    }
    assert sorted(strings(body)) == ["END", "Hi Ada", "user"]
    assert strings("Hello") == ["Hello"]
    assert strings(None) == []
