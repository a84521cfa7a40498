"""The recognisers, on planted values and on look-alikes that are not PII."""

from __future__ import annotations

import pytest

from stackyard.guardrails.pii import Found, find


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("write to ada@example.org", "EMAIL", "ada@example.org"),
        ("IBAN GB82 WEST 1234 5698 7654 32 please", "IBAN", "GB82 WEST 1234 5698 7654 32"),
        ("IBAN DE89370400440532013000.", "IBAN", "DE89370400440532013000"),
        ("card 4111 1111 1111 1111", "CARD", "4111 1111 1111 1111"),
        ("SSN 123-45-6789", "SSN", "123-45-6789"),
        ("from 192.168.1.20 today", "IP", "192.168.1.20"),
        ("host 2001:db8:85a3::8a2e:370:7334", "IP", "2001:db8:85a3::8a2e:370:7334"),
        ("call +44 20 7946 0958", "PHONE", "+44 20 7946 0958"),
        ("key sk-proj-abcdefghijklmnopqrstuv", "API_KEY", "sk-proj-abcdefghijklmnopqrstuv"),
    ],
)
def test_planted_values_are_found(text: str, kind: str, value: str) -> None:
    assert [(f.kind, f.value) for f in find(text)] == [(kind, value)]


@pytest.mark.parametrize(
    "text",
    [
        "IBAN GB82 WEST 1234 5698 7654 33",  # a wrong check digit
        "SSN 000-12-3456 and 666-12-3456",  # never issued
        "version 999.1.1.1",  # no such address
        "card 4111 1111 1111 1112",  # fails Luhn
        "in 2024 we sold 12 units",
    ],
)
def test_look_alikes_are_not(text: str) -> None:
    assert [f for f in find(text) if f.kind != "PHONE"] == []


@pytest.mark.parametrize("date", ["1984-03-12", "12.03.1984", "12/03/1984"])
def test_a_date_is_not_a_phone_number(date: str) -> None:
    assert find(f"born {date} in Leeds") == []
    assert [f.kind for f in find("call 0161 496 0000")] == ["PHONE"]


def test_the_taggers_finds_fill_in_where_no_pattern_matched() -> None:
    text = "Ada Lovelace, ada@example.org"
    tagged = [
        Found(0, 12, "PERSON", "Ada Lovelace"),
        Found(14, 29, "URL", "ada@example.org"),  # overlaps the email: the pattern wins
    ]
    assert [(f.kind, f.value) for f in find(text, None, tagged)] == [
        ("PERSON", "Ada Lovelace"),
        ("EMAIL", "ada@example.org"),
    ]
    assert [f.kind for f in find(text, frozenset({"EMAIL"}), tagged)] == ["EMAIL"]


def test_kinds_can_be_chosen() -> None:
    text = "ada@example.org from 10.0.0.1"
    assert [f.kind for f in find(text, frozenset({"IP"}))] == ["IP"]


def test_a_web_address_is_found_by_its_scheme_or_www_without_its_punctuation() -> None:
    from stackyard.guardrails.pii import find

    text = "See http://www.ScrapbookInsider.com.pt/, or www.example.org. Version 1.2.3 is out."
    assert [(f.kind, f.value) for f in find(text)] == [
        ("URL", "http://www.ScrapbookInsider.com.pt/"),
        ("URL", "www.example.org"),
    ]
    assert find("(https://x.io/a?b=c)")[0].value == "https://x.io/a?b=c"
    assert [f.kind for f in find("Write to ada@example.org")] == ["EMAIL"]


def tagged_place(text: str, place: str, kind: str = "LOCATION") -> list[Found]:
    start = text.index(place)
    return [Found(start, start + len(place), kind, place)]


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("The depot in Lyon opens at 9.", False),  # a place alone identifies no one
        ("My sister moved to Lyon last year.", True),  # about someone
        ("she says Lyon is lovely", True),
        ("Email ada@example.org the map of Lyon.", True),  # beside a contact detail
    ],
)
def test_linked_only_keeps_places_only_in_texts_about_someone(text: str, kept: bool) -> None:
    tagged = tagged_place(text, "Lyon")
    found = [(f.kind, f.value) for f in find(text, None, tagged, linked_only=True)]
    assert (("LOCATION", "Lyon") in found) is kept
    assert ("LOCATION", "Lyon") in [(f.kind, f.value) for f in find(text, None, tagged)]


def test_linked_only_reads_the_link_before_kinds_narrow_what_is_redacted() -> None:
    text = "Email ada@example.org the map of Lyon."
    found = find(text, frozenset({"LOCATION"}), tagged_place(text, "Lyon"), linked_only=True)
    assert [(f.kind, f.value) for f in found] == [("LOCATION", "Lyon")]


def test_linked_only_leaves_direct_identifiers_alone() -> None:
    text = "Acme in Lyon: call +44 20 7946 0958."
    tagged = tagged_place(text, "Acme", "ORGANIZATION")
    found = [(f.kind, f.value) for f in find(text, None, tagged, linked_only=True)]
    assert found == [("ORGANIZATION", "Acme"), ("PHONE", "+44 20 7946 0958")]
    alone = "Acme opened in 1977."
    assert find(alone, None, tagged_place(alone, "Acme", "ORGANIZATION"), linked_only=True) == []
