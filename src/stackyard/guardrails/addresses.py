"""Reading what the entity tagger calls an address: a postal address (a street's or a
building's word, a postcode, a name beside a number), a place alone, a date or a time the
tagger read beside places, or nothing (a label and a number, a code). :mod:`ner` asks
:func:`address_kind` of each address it finds."""

from __future__ import annotations

import re
from collections.abc import Sequence

from stackyard.guardrails.shapes import DATE, date_ok

LETTERS = re.compile(r"[^\W\d_]+")
#: Postcodes that hold no word of three letters: British ("LS6 2QT", "SW1A 1AA"), Canadian
#: ("K1A 0B1"), Dutch ("1012 AB"), and an American or Australian one after its state ("MI
#: 48213", "NSW 2000").
POSTCODE = re.compile(
    r"\b(?:[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}|[A-Z]\d[A-Z] ?\d[A-Z]\d|\d{4} ?[A-Z]{2}"
    r"|[A-Z]{2},? \d{5}(?:-\d{4})?|(?:NSW|VIC|QLD|WA|SA|TAS|ACT|NT) \d{4})\b"
)
#: Words that make a number an address: a street's, a building's, a plot's, in the languages
#: addresses are written in ("St", "Calle", "Rua", "Suite", "Nagar"). Not "floor", "unit",
#: "building" or "box": rooms and things have those too.
STREET_WORDS = frozenset(
    [
        *("street", "str", "road", "avenue", "ave", "avda", "avenida", "lane", "boulevard"),
        *("blvd", "drive", "crescent", "cres", "terrace", "tce", "highway", "hwy", "parkway"),
        *("pkwy", "alley", "mews", "wharf", "quay", "strasse", "straße", "gasse", "platz"),
        *("allee", "damm", "ufer", "rue", "chemin", "impasse", "allée", "calle", "carrera"),
        *("carretera", "camino", "paseo", "plaza", "rua", "travessa", "largo", "praça", "via"),
        *("viale", "piazza", "corso", "vicolo", "ulica", "aleja", "marg", "nagar", "chowk"),
        *("gali", "sector", "plot", "apt", "apartment", "apartments", "suite"),
        *("residency", "colony", "gardens", "st", "rd", "ln", "dr", "pl", "ct", "av", "ul"),
        *("apo", "fpo", "dpo", "psc", "grove"),
    ]
)
#: Words that are a street's only when capitalised ("Oak Place", "Elm Court"): in lower case
#: they are words ("the best way", "row 3", "block 4").
TITLED_STREET_WORDS = frozenset(
    [
        *("way", "place", "court", "close", "circle", "square", "row", "house", "block"),
        *("estate", "box", "route", "park", "walk", "green", "hill", "rise", "view", "flat"),
    ]
)
#: Endings of streets' names written as one word ("Schillerstr", "Semperweg", "Kungsgatan").
STREET_SUFFIXES = (
    "strasse",
    "straße",
    "str",
    "weg",
    "gasse",
    "platz",
    "allee",
    "straat",
    "laan",
    "gracht",
    "gatan",
    "gata",
    "vägen",
    "vej",
    "veien",
    "katu",
    "utca",
    "chome",
)
MONTHS = (
    "jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    "|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?"
)
#: A day and a month, or a month and a day or a year ("23 December", "Dec 2025").
DAY_MONTH = re.compile(
    rf"(?i)\d{{1,2}}(?:st|nd|rd|th)?\s(?:{MONTHS})\.?(?:\s\d{{4}})?"
    rf"|(?:{MONTHS})\.?\s\d{{1,4}}(?:st|nd|rd|th)?"
)
#: A time or a day inside a longer find ("Sat 8am", "wed 5:30", "14:30 BST", "on 15 May").
TIME_IN = re.compile(
    r"(?i)\b\d{1,2}(?::\d{2})?\s?[ap]\.?m\b|\b\d{1,2}:\d{2}\b|\b\d{1,2}(?:st|nd|rd|th)\b"
    rf"|\b\d{{1,2}}\s(?:{MONTHS})\b|\b(?:{MONTHS})\.?\s\d{{1,2}}\b"
)
#: A year of this or the last century, in a longer find ("Easter 2024"), a weekday ("Sat"
#: and "Sun" only in full: "Sun Life"), and a day's number after "on" ("Hamilton on 19").
YEAR_OR_WEEKDAY = re.compile(
    r"(?<!\d)(?:19|20)\d\d(?!\d)"
    r"|(?i:\b(?:(?:mon|tues|wednes|thurs|fri|satur|sun)day|mon|tue|tues|wed|thu|thur|thurs"
    r"|fri)\b)|\bon \d{1,2}\b"
)
#: What comes before the rest of a time: "8:" of "8:45", a digit before "p.m.".
CLOCK_BEFORE = re.compile(r"\d[:.]$")
DIGIT_BEFORE = re.compile(r"\d\s?$")
#: A capitalised name, a comma and an age ("Ezra, 14").
NAME_AND_AGE = re.compile(r"\b[A-Z][a-z]+,\s\d{1,3}\b")
#: A postcode's digits: four to six in a run, not a year ("Directive 2006").
POSTCODE_DIGITS = re.compile(r"(?<!\d)(?!(?:19|20)\d\d(?!\d))\d{4,6}(?!\d)")
#: A word standing alone, not letters inside a code ("0xFFu", "xk2lp").
WORD_ALONE = re.compile(r"(?<![^\W_])[^\W\d_]+(?![^\W_])")
#: The word just after a find, and the word just before it.
NEXT_WORD = re.compile(r"^[\s,.]*([^\W\d_]+)")
LAST_WORD = re.compile(r"([^\W\d_]+)[\s,.]*$")
#: What is trimmed from a find before it is read as a time: punctuation, brackets, emoji.
EDGES = re.compile(r"^[\W_]+|[\W_]+$")
#: A time ("7pm", "10:30pm", "09:20", "2 p"), a day ("14th", "05.04", "03/11") or a year of
#: this or the last century, alone.
TIME_OR_DAY = re.compile(
    r"(?i)\d{1,2}(?::\d{2})?(?:\s?[ap]\.?m\.?|\s[ap]\.?|[ap]\.)"
    r"|\d{1,2}:\d{2}"
    r"|\d{1,2}(?:st|nd|rd|th)"
    r"|(?:0?[1-9]|[12]\d|3[01])[./](?:0?[1-9]|1[0-2])"
    r"|(?:0?[1-9]|1[0-2])/(?:0?[1-9]|[12]\d|3[01])"
    r"|(?:19|20)\d{2}"
)


def address_kind(
    text: str, start: int, end: int, rare: Sequence[tuple[int, int]] = ()
) -> str | None:
    """What an address the tagger found is, by its shape (``rare``: where the words are that
    the tokenizer splits in pieces, which are names more often than words):

    - ``ADDRESS`` where it holds a street's or a building's word ("St", "Calle", "Suite",
      "Schillerstr."), a postcode, or, with a number, a name ("Ermou 45", "2519 Semperweg");
    - ``LOCATION`` where, without a number, it holds a capitalised word: a place ("Leeds",
      "São Paulo"), not an address;
    - ``DATE`` where it is a time, a day or a year ("7pm", "09:20", "14th", "05.04", "2024",
      "23 December") or lies in a date written in numbers ("2022-01-15"): the tagger reads
      numbers beside places as addresses;
    - None where it is none of these: codes and labels ("BA 287", "56B", "e29b-41d4", "SKU
      4410", "Terminal 1", "centre 4410"), acronyms and words ("VAT", "CET", "floor"), which
      are an address only beside one (:meth:`EntityTagger._beside`)."""
    value = text[start:end]
    words = list(LETTERS.finditer(value))
    trimmed = EDGES.sub("", value)
    if (
        TIME_OR_DAY.fullmatch(trimmed)
        or DAY_MONTH.fullmatch(trimmed)
        or (value[:1].isdigit() and CLOCK_BEFORE.search(text, max(0, start - 3), start))
        or (trimmed.lower() in ("a", "p", "am", "pm") and DIGIT_BEFORE.search(text, 0, start))
    ):
        return "DATE"  # also the rest of a time the tagger cut ("8:|45 sharp", "2 |p.m.")
    beside = [
        *NEXT_WORD.findall(text[end : end + 20]),
        *LAST_WORD.findall(text[max(0, start - 20) : start]),
    ]
    near = max(0, start - 6)  # a postcode the tagger cut ("3PT" of "LE2 3PT")
    if (
        any(
            m.start() < end - near and start - near < m.end()
            for m in POSTCODE.finditer(text[near : end + 6])
        )
        or any(street_word(w[0]) for w in words)
        or any(street_word(w) for w in beside)
    ):
        return "ADDRESS"
    if (
        TIME_IN.search(value)
        or YEAR_OR_WEEKDAY.search(value)
        or any(m.start() < end and start < m.end() and date_ok(m) for m in DATE.finditer(text))
    ):
        return "DATE"
    alone = list(WORD_ALONE.finditer(value))  # words, not letters inside a code ("0xFFu")
    split = [
        w[0] for w in alone if any(x <= start + w.start() and start + w.end() <= y for x, y in rare)
    ]
    if not any(c.isdigit() for c in value):
        if not any(len(w[0]) >= 3 for w in words):
            return None  # a letter or two ("C", "US", "GL")
        # a word in lower case that the model knows whole ("floor", "conf") is a word
        return None if all(w[0].islower() and w[0] not in split for w in words) else "LOCATION"
    if any(len(w) >= 4 and not w.isupper() for w in split):
        return "ADDRESS"  # a name and a number ("Ermou 45", "2519 Semperweg")
    if any(titled(w[0]) for w in alone) and POSTCODE_DIGITS.search(value):
        return "ADDRESS"  # a place and a postcode ("Germany 74285")
    if NAME_AND_AGE.search(value):
        return "ADDRESS"  # a name and an age, as the tagger reads them ("Ezra, 14")
    return None


def titled(word: str) -> bool:
    """A capitalised word ("Leeds", "Ermou"), not an acronym ("VAT") or a lower-case word."""
    return len(word) >= 3 and word[0].isupper() and word[1:].islower()


def street_word(word: str) -> bool:
    lower = word.lower()
    if lower in TITLED_STREET_WORDS:
        return word[0].isupper()
    return lower in STREET_WORDS or (len(word) > 4 and lower.endswith(STREET_SUFFIXES))
