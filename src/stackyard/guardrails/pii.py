"""PII recognisers: emails, phone numbers, card numbers (Luhn), IBANs (mod 97), US social
security numbers, IP addresses and API keys. Each finds spans in a text; overlapping finds go to
the recogniser listed first, and the patterns go before the entity tagger's finds (names,
addresses and the like, :mod:`stackyard.guardrails.ner`), which are passed in."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
CARD = re.compile(r"(?<![\d+-])\d(?:[ -]?\d){11,18}(?![\d-])")  # 12 (Maestro) to 19 digits
#: Provider keys by their documented prefixes: OpenAI and Anthropic (sk-), AWS access key
#: ids (AKIA, ASIA), GitHub (ghp_ and kin, github_pat_), GitLab (glpat-), Slack (xox?-),
#: Google (AIza), Stripe (sk_/rk_ live or test), Hugging Face (hf_), npm (npm_), SendGrid
#: (SG.), and bearer tokens.
API_KEY = re.compile(
    r"\b(?:sk-(?:ant-|proj-|sy-)?[A-Za-z0-9_-]{16,}"
    r"|(?:AKIA|ASIA)[0-9A-Z]{16}"
    r"|gh[pousr]_[A-Za-z0-9]{36,}"
    r"|github_pat_[A-Za-z0-9_]{40,}"
    r"|glpat-[A-Za-z0-9_-]{20,}"
    r"|xox[abprs]-[A-Za-z0-9-]{10,}"
    r"|AIza[0-9A-Za-z_-]{35}"
    r"|[sr]k_(?:live|test)_[A-Za-z0-9]{20,}"
    r"|hf_[A-Za-z]{30,}"
    r"|npm_[A-Za-z0-9]{36}"
    r"|SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43})"
    r"|(?i:bearer)\s+[A-Za-z0-9._~+/-]{16,}=*"
)
PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?)?\d{2,5}(?:[\s.-]\d{2,5}){1,4}"
    r"(?:\s?(?:x|ext\.?)\s?\d{1,5})?(?!\w)"
    r"|(?<![\w+])\+?\d{9,15}(?!\w)"
)


def luhn(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


@dataclass(frozen=True, slots=True)
class Found:
    start: int
    end: int
    kind: str
    value: str


IBAN = re.compile(r"\b[A-Za-z]{2}\d{2}(?: ?[A-Za-z0-9]{4}){2,7}(?: ?[A-Za-z0-9]{1,3})?\b")
SSN = re.compile(r"(?<![\d-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\d-])")
IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")


def iban_ok(text: str) -> bool:
    compact = text.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34:
        return False
    moved = compact[4:] + compact[:4]
    digits = "".join(str(int(c, 36)) for c in moved)
    return int(digits) % 97 == 1


def _card_ok(text: str) -> bool:
    digits = re.sub(r"\D", "", text)
    return 12 <= len(digits) <= 19 and luhn(digits)


def ip_ok(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


#: Dates that have a phone number's shape (2024-03-12, 12.03.2024, 12/03/2024).
DATE_LIKE = re.compile(r"\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{4}")


def _phone_ok(text: str) -> bool:
    return 8 <= sum(c.isdigit() for c in text) <= 15 and not DATE_LIKE.fullmatch(text)


RECOGNISERS: list[tuple[str, re.Pattern[str], Callable[[str], bool] | None]] = [
    ("API_KEY", API_KEY, None),
    ("EMAIL", EMAIL, None),
    ("IBAN", IBAN, iban_ok),
    ("CARD", CARD, _card_ok),
    ("SSN", SSN, None),
    ("IP", IPV4, ip_ok),
    ("IP", IPV6, ip_ok),
    ("PHONE", PHONE, _phone_ok),
]
PATTERN_KINDS = sorted({kind for kind, _, _ in RECOGNISERS})
#: What the entity tagger adds (TITLE, which it also tags, is not PII).
TAGGED_KINDS = ["ADDRESS", "AGE", "DATE", "ID", "LOCATION", "NRP", "ORGANIZATION", "PERSON", "URL"]
KINDS = sorted({*PATTERN_KINDS, *TAGGED_KINDS})


def find(
    text: str, kinds: frozenset[str] | None = None, tagged: Sequence[Found] = ()
) -> list[Found]:
    """Non-overlapping finds of ``kinds`` (default all), in order of position: the patterns',
    then those of ``tagged`` (the entity tagger's) that overlap no pattern's find, whatever
    its kind (part of an email is not a name, even where emails are not redacted)."""
    taken: list[Found] = []
    for kind, pattern, valid in RECOGNISERS:
        if kinds is not None and kind not in kinds and not tagged:
            continue
        for match in pattern.finditer(text):
            start, end = match.span()
            if valid is not None and not valid(match[0]):
                continue
            if any(start < f.end and f.start < end for f in taken):
                continue
            taken.append(Found(start, end, kind, match[0]))
    for item in tagged:
        if not any(item.start < f.end and f.start < item.end for f in taken):
            taken.append(item)
    if kinds is not None:
        taken = [f for f in taken if f.kind in kinds]
    return sorted(taken, key=lambda f: f.start)
