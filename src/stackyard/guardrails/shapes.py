"""What a value must look like to be a kind of PII, whoever found it (a pattern or the entity
tagger): a card is Luhn-valid with 13 to 19 digits, a phone number has a phone's shape and
enough digits for its region, an IP address is valid and not part of a version string, a
date is a date (never a phone number or an address), and a bare number is never a name, a
place or an organisation. Ordinary text is full of numbers (order numbers, versions, years,
room numbers) that the looser shapes took for personal data."""

from __future__ import annotations

import ipaddress
import re

SSN = re.compile(r"(?<![\d-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\d-])")
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")


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


def card_ok(text: str) -> bool:
    """13 to 19 digits (the ISO/IEC 7812 lengths in use) passing the Luhn check: a four-digit
    order number or a twelve-digit id is not a card."""
    digits = re.sub(r"\D", "", text)
    return 13 <= len(digits) <= 19 and luhn(digits)


def iban_ok(text: str) -> bool:
    compact = text.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34 or not compact.isalnum():
        return False
    moved = compact[4:] + compact[:4]
    digits = "".join(str(int(c, 36)) for c in moved)
    return int(digits) % 97 == 1


def ip_ok(text: str) -> bool:
    """A valid address that can be someone's: not this machine's own (``127.0.0.1``, ``::1``)
    and not "any address" (``0.0.0.0``, ``::``), which name no one."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    return not (address.is_loopback or address.is_unspecified)


#: What joins a number to the letters of a code ("INV-2024-00417", "7741-0032-B"): a hyphen,
#: slash or underscore. A digit there does not count: "1-800-555-0199" is one phone number.
GLUE_BEFORE = re.compile(r"[^\W\d_][-/_]$")
GLUE_AFTER = re.compile(r"[-/_][^\W\d_]")


#: Words that name the number after them as a thing's, not a phone's: an order's, an item's,
#: a build's ("Order 99-413-2207", "SKU 100-2284", "ticket 176-2398817745"), a product's or
#: a goods' code ("EAN", "commodity 6109 10 00 10", "TARIC 8471 30 00 00", "SN" for a serial
#: number). Not an account's, a policy's or a claim's: those numbers are a person's, and stay
#: redacted.
THINGS_NUMBER = re.compile(
    r"(?i)\b(?:order|item|sku|ticket|invoice|inv|build|ref|reference|case|lot|batch|part|model"
    r"|tracking|po|rma|booking|confirmation|conf|receipt|transaction|txn|version|isbn"
    r"|regulation|section|article|product|store|flight|train|route|room|gate|seat|platform"
    r"|serial|asset|job|run|pr|issue|request|req|incident|inc|commodity|tariff|taric|hs|cn|sn"
    r"|ean|upc|gtin|issn|doi)s?\b[\s:#.-]*"
    r"(?:no\.?|number|nr\.?|num\.?)?[\s:#.-]*(?:\d+-)?$"
)
#: A digit and a dot just before a number ("16.0.17328.20162"; the tagger also reads it
#: backwards after a find): the number is a piece of a longer dotted one, a version's.
DOTTED = re.compile(r"\d\.$")


#: The rest of a longer number just before a phone-shaped one ("978-0-306-40615",
#: "220-4419928371"): two digits or more, or a hyphenated run, joined by a hyphen or slash.
#: A single leading digit is a trunk or country code ("1-800-555-0199").
LONGER_BEFORE = re.compile(r"(?:\d{2,}|\d[-/.]\d+)[-/]$")


def phone_in_context(text: str, start: int, end: int) -> bool:
    """Whether a phone-shaped number at ``text[start:end]`` is one by where it stands: not
    joined to a code's letters, not the end of a longer number (an ISBN, a ticket's number),
    not a piece of a dotted version, and not named as a thing's number by the word before
    it."""
    return not (
        glued(text, start, end)
        or LONGER_BEFORE.search(text, max(0, start - 20), start)
        or DOTTED.search(text, max(0, start - 2), start)
        or THINGS_NUMBER.search(text, max(0, start - 30), start)
    )


def glued(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` is a piece of a longer code, joined to letters by a hyphen,
    slash or underscore on either side: an invoice or part number, not a phone number."""
    return bool(GLUE_BEFORE.search(text, max(0, start - 2), start) or GLUE_AFTER.match(text, end))


#: A version's marker just before a number ("v1.2.3", "version 2.4.10.1", "release 10.0.1.2").
VERSION_BEFORE = re.compile(
    r"(?i)(?:\bv|\bver|\bversion|\brelease|\bbuild|\brev|\brevision|\bupdate|\bpatch"
    r"|\bfirmware|\bkernel|\bpython|\bnode|\bjava|\bsdk|\bapi)\.?\s*$"
)
#: Words that make a dotted quad an address: an IP-like context.
IP_CONTEXT = re.compile(
    r"(?i)\b(?:ip|ips|ipv4|ipv6|address(?:es)?|addr|host(?:name)?s?|servers?|ping|ssh|connect"
    r"(?:ed|ion|ing)?|subnet|gateway|dns|router|proxy|firewall|client|log(?:ged)?|login"
    r"|network|port|nameserver|device|machine|node|vpn|lan|wan|tcp|udp|http|origin)\b"
)


#: A prefix length after an address ("/16"): with it, the address may name a network.
CIDR_AFTER = re.compile(r"/\d{1,3}(?!\d)")


def network(address: str, prefix: str) -> bool:
    """Whether ``address`` and its ``/prefix`` name a network's range (``10.20.0.0/16``):
    not one host (``/32``, or an interface's address with host bits set)."""
    try:
        net = ipaddress.ip_network(address + prefix, strict=True)
    except ValueError:
        return False
    return net.num_addresses > 2


def ip_in_context(text: str, start: int, end: int) -> bool:
    """Whether the IP address at ``text[start:end]`` is one: valid, not a network's range
    (``10.20.0.0/16``; ``81.2.69.160/32`` is one host's), not marked as a version, and either
    in an IP-like context (a word such as "IP", "server" or "host" within 40 characters) or
    not shaped like a version (a first number of 10 or more: 2.4.10.1 reads as a version,
    106.31.73.20 as an address)."""
    value = text[start:end]
    if not ip_ok(value):
        return False
    prefix = CIDR_AFTER.match(text, end)
    if prefix is not None and network(value, prefix[0]):
        return False
    if VERSION_BEFORE.search(text, max(0, start - 12), start):
        return False
    if ":" in value:  # IPv6: no version looks like it
        return True
    if IP_CONTEXT.search(text[max(0, start - 40) : min(len(text), end + 40)]):
        return True
    return int(value.split(".")[0]) >= 10


#: Numeric dates (and an ISO date's time): 2024-03-05, 2024-03-05 11:34:35, 5/3/2024, 05.03.2024.
DATE = re.compile(
    r"(?<![\w.:/-])(?:"
    r"(?P<iso>\d{4})-(?P<im>\d{1,2})-(?P<id>\d{1,2})(?:[ T]\d{1,2}:\d{2}(?::\d{2})?)?"
    r"|(?P<a>\d{1,2})(?P<sep>[/-])(?P<b>\d{1,2})(?P=sep)(?P<y>\d{4}|\d{2})"
    r"|(?P<da>\d{1,2})\.(?P<db>\d{1,2})\.(?P<dy>\d{4})"
    r")(?![\w:/-]|\.\d)"
)


def date_ok(match: re.Match[str]) -> bool:
    """A month from 1 to 12 and a day from 1 to 31 (either way round where it is ambiguous)."""
    if match["iso"]:
        return 1 <= int(match["im"]) <= 12 and 1 <= int(match["id"]) <= 31
    a, b = (match["a"], match["b"]) if match["a"] else (match["da"], match["db"])
    first, second = int(a), int(b)
    return (1 <= first <= 12 and 1 <= second <= 31) or (1 <= second <= 12 and 1 <= first <= 31)


def is_date(text: str) -> bool:
    match = DATE.fullmatch(text.strip())
    return match is not None and date_ok(match)


#: Digits in a phone number's groups, separators, an optional country code and area code in
#: brackets, and an extension.
PHONE_CHARS = re.compile(r"\+?[\d\s().-]+")
EXTENSION = re.compile(r"(?i)\s?(?:x|ext\.?)\s?\d{1,5}$")
#: National significant numbers' lengths by country code (E.164), for the biggest regions;
#: others take 6 to 12.
NATIONAL = {
    "1": (10, 10),
    "7": (10, 10),
    "33": (9, 9),
    "34": (9, 9),
    "39": (6, 11),
    "41": (9, 9),
    "44": (9, 10),
    "46": (7, 9),
    "49": (6, 13),
    "61": (9, 9),
    "81": (9, 10),
    "86": (10, 11),
    "91": (10, 10),
}


def phone_ok(text: str) -> bool:
    """A phone number's shape (digits in groups, with an optional ``+`` country code, area
    code in brackets and extension) with enough digits for its region: with a known country
    code, that country's lengths; else 8 to 15 digits (E.164), or 7 as ``555-1234`` (a local
    number), or 10 to 11 in one run (``9498777106``). Never a date, a version, a decimal
    number or numbers on two lines."""
    core = EXTENSION.sub("", text.strip())
    if not PHONE_CHARS.fullmatch(core) or is_date(core):
        return False
    if "\n" in core or "\r" in core:
        return False  # numbers on two lines (a table's cells), not one number
    groups = re.findall(r"\d+", core)
    if not groups:
        return False
    count = sum(len(g) for g in groups)
    dotted = re.fullmatch(r"\d+(?:\.\d+)+", core)
    # 2.4.10.1, 1.10.2; and a decimal number (641.5945, 1910.1020), not a phone's groups
    if dotted and (len(groups) == 2 or min(len(g) for g in groups) < 2):
        return False
    if core.startswith("+"):  # a trunk prefix in brackets, "+44 (0)20", is not dialled
        digits = "".join(re.findall(r"\d+", core.replace("(0)", "")))
        for code in (digits[:1], digits[:2], digits[:3]):
            if code in NATIONAL:
                low, high = NATIONAL[code]
                return low <= len(digits) - len(code) <= high
        return 8 <= len(digits) <= 15
    if len(groups) == 1:
        return 10 <= count <= 11
    if count == 7:
        return re.fullmatch(r"\d{3}[\s.-]\d{4}", core) is not None
    return 8 <= count <= 15


def ssn_ok(text: str) -> bool:
    return SSN.fullmatch(text) is not None


def email_ok(text: str) -> bool:
    return EMAIL.fullmatch(text) is not None


#: What a find of a kind with a shape must pass, whoever found it.
VALID = {
    "CARD": card_ok,
    "EMAIL": email_ok,
    "IBAN": iban_ok,
    "PHONE": phone_ok,
    "SSN": ssn_ok,
}
