"""Numbers and structure that are not PII (the issue's look-alikes: an order number, a
version string, a date before a room number) and the shapes that are."""

from __future__ import annotations

import pytest

from stackyard.guardrails.pii import Found, find
from stackyard.guardrails.shapes import card_ok, ip_in_context, is_date, phone_ok


def kinds(text: str) -> list[tuple[str, str]]:
    return [(f.kind, f.value) for f in find(text)]


@pytest.mark.parametrize(
    "text",
    [
        "Order 4417 shipped yesterday.",
        "Order 123456789 shipped.",  # nine digits in one run: no region's phone number
        "Ticket 630427373398 is open.",  # Luhn-valid, but twelve digits: not a card
        "Upgrade to 2.4.10.1 or v1.2.3 today.",
        "Please install version 10.0.1.2 first.",
        "Meet on 2024-03-05 room 204.",
        "Chapter 1.2.10 covers it.",
        "My order INV-2024-00417 is late.",  # a code's digits, not a phone number
        "Part 7741-0032-B is out of stock.",
        "Bind it to 127.0.0.1 or 0.0.0.0 on that server.",  # no one's address
        "Listen on ::1 on the host.",
        "Order 99-413-2207 shipped.",  # a thing's number, named by the word before it
        "SKU 100-2284 is out.",
        "Build 16.0.17328.20162 broke it.",  # a piece of a dotted version
        "Shelve it at 641.5945 under the 2023 scheme.",  # a decimal number
        "Rule 1910.1020 applies.",
        "qty\n88\n100235 rejected",  # numbers on two lines: a table's cells
        "Try the check digit on 978-0-306-40615-7.",  # the end of a longer number (an ISBN)
        "The receipt says 220-4419928371.",
        "Commodity 6109 10 00 10, TARIC 8471 30 00 00.",  # goods' codes
        "SN 8841239901 is active.",
        "Peer the VPC 10.20.0.0/16 with 172.16.0.0/12 on the router.",  # networks' ranges
    ],
)
def test_ordinary_numbers_are_not_pii(text: str) -> None:
    assert kinds(text) == []


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("card 4222222222222 ok", "CARD", "4222222222222"),  # 13 digits, Luhn-valid
        ("card 6011 5508 9603 3147.", "CARD", "6011 5508 9603 3147"),
        ("the server 10.0.0.1 is down", "IP", "10.0.0.1"),
        ("seen from 106.31.73.20", "IP", "106.31.73.20"),
        ("call 555-1234 tonight", "PHONE", "555-1234"),
        ("call +1 984 182 0190", "PHONE", "+1 984 182 0190"),
        ("call 03.93.92.16.85", "PHONE", "03.93.92.16.85"),
        ("call 9498777106", "PHONE", "9498777106"),
        ("call 1-800-555-0199 now", "PHONE", "800-555-0199"),  # digits either side: a phone
        ("text 07984 552117 please", "PHONE", "07984 552117"),  # a six-digit group (UK)
        ("account 5562-0183-77 is mine", "PHONE", "5562-0183-77"),  # an account's: redacted
        ("call 555.123.4567", "PHONE", "555.123.4567"),  # dots in a phone's groups
        ("only from 81.2.69.160/32 on ssh", "IP", "81.2.69.160"),  # one host, with its prefix
        ("my laptop at 192.168.1.5/24 on the lan", "IP", "192.168.1.5"),  # an interface's
    ],
)
def test_real_shapes_are_found(text: str, kind: str, value: str) -> None:
    assert kinds(text) == [(kind, value)]


def test_cards_are_luhn_valid_with_13_to_19_digits() -> None:
    assert card_ok("4111 1111 1111 1111")
    assert not card_ok("4111 1111 1111 1112")
    assert not card_ok("4417")
    assert not card_ok("630427373398")  # Luhn-valid, 12 digits
    assert not card_ok("4" + "0" * 18 + "9")  # 20 digits


def test_phones_need_enough_digits_for_their_region() -> None:
    assert phone_ok("+1 984 182 0190")
    assert not phone_ok("+1 984 182 019")  # North America: ten digits after +1
    assert phone_ok("+44 20 7946 0958")
    assert phone_ok("+46 (0)8 928 571 38")  # the trunk prefix in brackets is not dialled
    assert not phone_ok("+44 20 7946")
    assert not phone_ok("2.4.10.1")
    assert not phone_ok("2024-03-05")
    assert not phone_ok("1234 567")  # seven digits, not as 555-1234
    assert not phone_ok("641.5945")  # a decimal number
    assert not phone_ok("020 7946\n0958")  # two lines


def test_ips_are_valid_and_never_versions() -> None:
    def at(text: str, value: str) -> bool:
        start = text.rindex(value)
        return ip_in_context(text, start, start + len(value))

    assert not at("version 2.4.10.1", "2.4.10.1")
    assert not at("see 2.4.10.1", "2.4.10.1")  # shaped like a version, no IP-like context
    assert at("ip 2.4.10.1", "2.4.10.1")
    assert at("dns 8.8.8.8", "8.8.8.8")
    assert not at("ip 999.1.1.1", "999.1.1.1")
    assert at("seen from 106.31.73.20", "106.31.73.20")


def test_a_date_is_typed_a_date_where_the_tagger_found_something() -> None:
    text = "Meet on 2024-03-05 room 204."
    tagged = [Found(8, 27, "ADDRESS", text[8:27])]  # the tagger's read: one address
    assert [(f.kind, f.value) for f in find(text, None, tagged)] == [("DATE", "2024-03-05")]
    assert find(text) == []  # a date alone is not redacted by the patterns
    assert is_date("2000-04-16 11:34:35")
    assert is_date("2/8/1935")
    assert not is_date("2.4.10")
    assert not is_date("2024-13-05")
