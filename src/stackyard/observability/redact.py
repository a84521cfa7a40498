"""Redaction of stored request logs, with the guardrails' recognisers: emails, phone numbers,
card numbers (Luhn-checked), IBANs, US social security numbers, IP addresses and API keys,
plus the operator's own patterns. Applied to string values only (never to JSON keys or
structure), in the writer's thread, off the request path."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from stackyard.guardrails.pii import (
    API_KEY,
    CARD,
    EMAIL,
    IBAN,
    IPV4,
    IPV6,
    PHONE,
    SSN,
    iban_ok,
    ip_ok,
    luhn,
)

#: Cheap tests that a string may hold a match at all (most strings hold none, and the full
#: patterns cost several microseconds for every hundred characters they scan).
#: Seven digits, perhaps with single separators between them: the least a phone number or a
#: card number has (most strings with digits, "2024" or "v1.2", have no such run).
DIGIT_RUN = re.compile(r"\d(?:[\s().+-]?\d){6}")


def _may_hold_key(value: str) -> bool:
    return (
        "sk-" in value
        or "AKIA" in value
        or "AIza" in value
        or "xox" in value
        or "earer" in value
        or "EARER" in value
        or ("gh" in value and "_" in value)
    )


def _checked(token: str, valid: Callable[[str], bool]) -> Callable[[re.Match[str]], str]:
    def replace(match: re.Match[str]) -> str:
        return token if valid(match[0]) else match[0]

    return replace


def _card(match: re.Match[str]) -> str:
    digits = "".join(c for c in match[0] if c.isdigit())
    return "[CARD]" if 12 <= len(digits) <= 19 and luhn(digits) else match[0]


def _phone(match: re.Match[str]) -> str:
    return "[PHONE]" if 8 <= sum(c.isdigit() for c in match[0]) <= 15 else match[0]


def known(values: dict[str, str]) -> Callable[[str], str]:
    """Replaces each of ``values`` (value: kind, what the PII rail found in a request) with
    ``[KIND]``, longest first, wherever it stands in a string."""
    pattern = re.compile("|".join(re.escape(v) for v in sorted(values, key=len, reverse=True)))

    def replace(text: str) -> str:
        return pattern.sub(lambda m: f"[{values[m[0]]}]", text)

    return replace


class Redactor:
    def __init__(self, *, pii: bool = True, patterns: Sequence[str] = ()) -> None:
        self.pii = pii
        self.patterns = [re.compile(p) for p in patterns]

    @property
    def active(self) -> bool:
        return self.pii or bool(self.patterns)

    def text(self, value: str) -> str:
        for pattern in self.patterns:
            value = pattern.sub("[REDACTED]", value)
        if self.pii and len(value) > 5:
            if _may_hold_key(value):
                value = API_KEY.sub("[API_KEY]", value)
            if "@" in value:
                value = EMAIL.sub("[EMAIL]", value)
            if DIGIT_RUN.search(value):
                value = IBAN.sub(_checked("[IBAN]", iban_ok), value)
                value = CARD.sub(_card, value)
                value = SSN.sub("[SSN]", value)
                value = PHONE.sub(_phone, value)
            if value.count(".") >= 3 or "::" in value or value.count(":") >= 4:
                value = IPV4.sub(_checked("[IP]", ip_ok), value)
                value = IPV6.sub(_checked("[IP]", ip_ok), value)
        return value

    def value(self, value: Any, also: Callable[[str], str] | None = None) -> Any:
        """A copy of a JSON value with every string redacted (and passed through ``also``
        first, if given: :func:`known`). Iterative: however deep the value nests (an
        upstream's answer is not bounded as requests are), no recursion."""
        text = self.text
        if also is not None:
            first = also

            def text(value: str) -> str:
                return self.text(first(value))

        if isinstance(value, str):
            return text(value)
        if not isinstance(value, dict | list):
            return value
        root: Any = dict(value) if isinstance(value, dict) else list(value)
        stack = [root]
        while stack:
            node = stack.pop()
            for key, item in node.items() if isinstance(node, dict) else enumerate(node):
                if isinstance(item, str):
                    node[key] = text(item)
                elif isinstance(item, dict | list):
                    copy: Any = dict(item) if isinstance(item, dict) else list(item)
                    node[key] = copy
                    stack.append(copy)
        return root


def strings(value: Any) -> list[str]:
    """The distinct strings of a JSON value that hold a letter (what a detector may find
    something in), keys left out. Iterative, like :meth:`Redactor.value`."""
    found: dict[str, None] = {}
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if len(node) > 1 and any(c.isalpha() for c in node):
                found[node] = None
        elif isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return list(found)
