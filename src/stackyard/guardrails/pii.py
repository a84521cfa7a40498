"""PII recognisers: emails, web addresses, phone numbers, card numbers (Luhn), IBANs (mod 97),
US social security numbers, IP addresses and API keys. Each finds spans in a text;
overlapping finds go to the recogniser listed first, and the patterns go before the entity
tagger's finds (names, addresses and the like, :mod:`stackyard.guardrails.ner`), which are
passed in. What each kind
must look like is :mod:`stackyard.guardrails.shapes`'s.

Numeric dates are recognised too, first, so that no other pattern takes them for a phone
number and the tagger's find there is typed a date: a date is redacted (as ``DATE``) only where
the tagger found an entity."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from stackyard.guardrails.shapes import (
    DATE,
    card_ok,
    date_ok,
    ip_in_context,
    phone_in_context,
    phone_ok,
)

# Re-exported: the trace redactor and the benchmarks check with them.
from stackyard.guardrails.shapes import EMAIL as EMAIL
from stackyard.guardrails.shapes import SSN as SSN
from stackyard.guardrails.shapes import iban_ok as iban_ok
from stackyard.guardrails.shapes import ip_ok as ip_ok
from stackyard.guardrails.shapes import luhn as luhn

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
    r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?)?\d{2,5}(?:[\s.-]\d{2,8}){1,4}"
    r"(?:\s?(?:x|ext\.?)\s?\d{1,5})?(?!\w)"
    r"|(?<![\w+])\+?\d{9,15}(?!\w)"
)


@dataclass(frozen=True, slots=True)
class Found:
    start: int
    end: int
    kind: str
    value: str


#: A web address with its scheme or a leading "www." (a bare "example.com" is the tagger's to
#: find): up to the first space, quote or bracket, trailing punctuation left out.
URL = re.compile(
    r"\b(?:(?:https?|ftp)://|www\.)[^\s<>\"'`()\[\]{}]*[^\s<>\"'`()\[\]{}.,;:!?]",
    re.IGNORECASE,
)
IBAN = re.compile(r"\b[A-Za-z]{2}\d{2}(?: ?[A-Za-z0-9]{4}){2,7}(?: ?[A-Za-z0-9]{1,3})?\b")
IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
#: A check of a match in its text (an IP address needs its context).
Valid = Callable[[str, re.Match[str]], bool]


def _value(check: Callable[[str], bool]) -> Valid:
    return lambda _text, match: check(match[0])


RECOGNISERS: list[tuple[str, re.Pattern[str], Valid | None]] = [
    ("DATE", DATE, lambda _text, match: date_ok(match)),
    ("API_KEY", API_KEY, None),
    ("EMAIL", EMAIL, None),
    ("URL", URL, None),
    ("IBAN", IBAN, _value(iban_ok)),
    ("CARD", CARD, _value(card_ok)),
    ("SSN", SSN, None),
    ("IP", IPV4, lambda text, match: ip_in_context(text, *match.span())),
    ("IP", IPV6, _value(ip_ok)),
    (
        "PHONE",
        PHONE,
        lambda text, match: phone_ok(match[0]) and phone_in_context(text, *match.span()),
    ),
]
#: What the patterns redact on their own (dates are redacted where the tagger finds them).
PATTERN_KINDS = sorted({kind for kind, _, _ in RECOGNISERS} - {"DATE"})
#: What the entity tagger adds (TITLE, which it also tags, is not PII).
TAGGED_KINDS = ["ADDRESS", "AGE", "DATE", "ID", "LOCATION", "NRP", "ORGANIZATION", "PERSON", "URL"]
KINDS = sorted({*PATTERN_KINDS, *TAGGED_KINDS})


def find(
    text: str,
    kinds: frozenset[str] | None = None,
    tagged: Sequence[Found] = (),
    linked_only: bool = False,
) -> list[Found]:
    """Non-overlapping finds of ``kinds`` (default all), in order of position: the patterns',
    then those of ``tagged`` (the entity tagger's) that overlap no pattern's find, whatever
    its kind (part of an email is not a name, even where emails are not redacted). A numeric
    date is a ``DATE`` where a tagged find overlaps it, and nothing otherwise. With
    ``linked_only``, places, organisations, dates, ages and groups are found only in a text
    about someone (:func:`about_someone`)."""
    taken: list[Found] = []
    for kind, pattern, valid in RECOGNISERS:
        if kinds is not None and kind not in kinds and not tagged and kind != "DATE":
            continue
        for match in pattern.finditer(text):
            start, end = match.span()
            if valid is not None and not valid(text, match):
                continue
            if any(start < f.end and f.start < end for f in taken):
                continue
            taken.append(Found(start, end, kind, match[0]))
    dates = [f for f in taken if f.kind == "DATE"]
    taken = [
        f
        for f in taken
        if f.kind != "DATE" or any(t.start < f.end and f.start < t.end for t in tagged)
    ]
    for item in tagged:
        if not any(item.start < f.end and f.start < item.end for f in [*taken, *dates]):
            taken.append(item)
    if linked_only and taken and not about_someone(text, taken):
        taken = [f for f in taken if f.kind not in QUASI]
    if kinds is not None:
        taken = [f for f in taken if f.kind in kinds]
    return sorted(taken, key=lambda f: f.start)


#: Kinds that identify no one alone ("the Lyon depot", "founded in 1977", "aged 40"), only
#: beside someone: a name, a contact detail, or a person the text speaks of.
QUASI = frozenset({"LOCATION", "ORGANIZATION", "DATE", "AGE", "NRP"})
#: Words that make a text about a person: the writer, someone they speak of, a relation, a
#: client.
SOMEONE = re.compile(
    r"(?i)\b(?:i|i'm|i've|i'd|me|my|mine|myself|he|she|him|her|his|hers|himself|herself"
    r"|mum|mom|dad|father|mother|son|daughter|wife|husband|partner|boyfriend|girlfriend|brother"
    r"|sister|grandma|grandpa|grandmother|grandfather|nan|gran|aunt|uncle|cousin|niece|nephew"
    r"|kid|kids|child|baby|friend|colleague|boss|tenant|landlord|client|patient|customer)\b"
)


def about_someone(text: str, found: Sequence[Found]) -> bool:
    """Whether ``text`` is about a person: something else than a place, an organisation, a
    date, an age or a group was found in it (a name, an email, a phone number, an address),
    or it speaks of someone (I, my, she, his, mum, a client...)."""
    return any(f.kind not in QUASI for f in found) or SOMEONE.search(text) is not None
