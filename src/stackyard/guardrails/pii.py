"""PII recognisers: emails, phone numbers, card numbers (Luhn), IBANs (mod 97), US social
security numbers, IP addresses and API keys. Each finds spans in a text; overlapping finds go to
the recogniser listed first."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass

from stackyard.observability.redact import API_KEY, CARD, EMAIL, PHONE, luhn


@dataclass(frozen=True, slots=True)
class Found:
    start: int
    end: int
    kind: str
    value: str


IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b")
SSN = re.compile(r"(?<![\d-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\d-])")
IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")


def _iban_ok(text: str) -> bool:
    compact = text.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    moved = compact[4:] + compact[:4]
    digits = "".join(str(int(c, 36)) for c in moved)
    return int(digits) % 97 == 1


def _card_ok(text: str) -> bool:
    digits = re.sub(r"\D", "", text)
    return 13 <= len(digits) <= 19 and luhn(digits)


def _ip_ok(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _phone_ok(text: str) -> bool:
    return sum(c.isdigit() for c in text) >= 7


RECOGNISERS: list[tuple[str, re.Pattern[str], Callable[[str], bool] | None]] = [
    ("API_KEY", API_KEY, None),
    ("EMAIL", EMAIL, None),
    ("IBAN", IBAN, _iban_ok),
    ("CARD", CARD, _card_ok),
    ("SSN", SSN, None),
    ("IP", IPV4, _ip_ok),
    ("IP", IPV6, _ip_ok),
    ("PHONE", PHONE, _phone_ok),
]
KINDS = sorted({kind for kind, _, _ in RECOGNISERS})


def find(text: str, kinds: frozenset[str] | None = None) -> list[Found]:
    """Non-overlapping finds, in order of position."""
    taken: list[Found] = []
    for kind, pattern, valid in RECOGNISERS:
        if kinds is not None and kind not in kinds:
            continue
        for match in pattern.finditer(text):
            start, end = match.span()
            if valid is not None and not valid(match[0]):
                continue
            if any(start < f.end and f.start < end for f in taken):
                continue
            taken.append(Found(start, end, kind, match[0]))
    return sorted(taken, key=lambda f: f.start)
