"""The entity tagger: names, addresses, places, organisations and dates on planted sentences,
ordinary prompts left alone, long texts read in windows, its shipped weights on sentences from
templates it never saw, and a vault that redacts and restores what it finds."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from stackyard.guardrails import addresses, ner, pii
from stackyard.guardrails.ner import EntityTagger, group_words
from stackyard.guardrails.reading import WINDOW, read
from stackyard.guardrails.vault import Vault
from tests.conftest import need_module, unavailable

HELD_OUT = Path(__file__).parent / "data" / "pii_held_out.json"


@pytest.fixture(scope="module")
def tagger() -> EntityTagger:
    need_module("sentence_transformers")
    from stackyard.engine.sources import ModelSourceError, resolve

    try:
        resolve("all-minilm-l6-v2", "embeddings")
    except ModelSourceError as exc:
        unavailable(str(exc))
    found = ner.load_tagger()
    assert found is not None
    return found


def finds(tagger: EntityTagger, text: str) -> list[tuple[str, str]]:
    return [(f.kind, f.value) for f in pii.find(text, None, tagger.find(text))]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "I am Ada Lovelace. My email is ada@example.org.",
            [("PERSON", "Ada Lovelace"), ("EMAIL", "ada@example.org")],
        ),
        (
            "Please ship it to 221B Baker Street, London NW1 6XE, United Kingdom.",
            [("ADDRESS", "221B Baker Street, London NW1 6XE"), ("LOCATION", "United Kingdom")],
        ),
        (
            "Born 1984-03-12, Pedro Alvarez works for Acme Corp in Madrid.",
            [
                ("DATE", "1984-03-12"),
                ("PERSON", "Pedro Alvarez"),
                ("ORGANIZATION", "Acme Corp"),
                ("LOCATION", "Madrid"),
            ],
        ),
        (
            "The address is 6750 Koskikatu 25 Apt. 864\nArtilleros\n, CO\n Uruguay 64677",
            [("ADDRESS", "6750 Koskikatu 25 Apt. 864\nArtilleros\n, CO\n Uruguay 64677")],
        ),
    ],
)
def test_planted_entities_are_found(
    tagger: EntityTagger, text: str, expected: list[tuple[str, str]]
) -> None:
    assert finds(tagger, text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "How can I kill a Python process?",
        "Summarize the plot of the film in two sentences.",
        "Write a haiku about autumn leaves.",
        "",
    ],
)
def test_ordinary_prompts_are_left_alone(tagger: EntityTagger, text: str) -> None:
    assert finds(tagger, text) == []


def test_a_long_text_is_read_in_windows_to_its_end(tagger: EntityTagger) -> None:
    text = "The weather was fine and we walked along the river for hours. " * 40
    text += "Then I met Maria Schmidt."
    offsets, _ = tagger.piece_probabilities(text)
    assert len(offsets) > 2 * WINDOW
    assert finds(tagger, text) == [("PERSON", "Maria Schmidt")]


def test_kinds_narrow_what_is_found(tagger: EntityTagger) -> None:
    text = "Pedro Alvarez works for Acme Corp in Madrid."
    assert [f.kind for f in tagger.find(text, frozenset({"LOCATION"}))] == ["LOCATION"]


def test_pieces_make_words_and_punctuation_stands_alone() -> None:
    text = "Koskikatu, Apt."
    offsets = [(0, 3), (3, 5), (5, 9), (9, 10), (11, 14), (14, 15)]
    assert group_words(text, offsets) == [(0, 3), (3, 4), (4, 5), (5, 6)]


def test_the_shipped_weights_match_the_code() -> None:
    import numpy as np

    data = np.load(ner.WEIGHTS, allow_pickle=False)
    assert tuple(str(k) for k in data["kinds"]) == ner.KINDS
    assert int(data["layer"]) == ner.LAYER
    assert data["w2"].shape[1] == len(ner.KINDS) + 1
    assert 0 < float(data["threshold"]) < 1


def test_sentences_from_unseen_templates(tagger: EntityTagger) -> None:
    # A slice of the templates held out of the tagger's training (tests/guardrails/data says
    # where from); a clone without ../shared has it too.
    import json

    held_out = json.loads(HELD_OUT.read_text(encoding="utf-8"))["records"]
    caught = total = 0
    for record in held_out:
        spans = [(f.start, f.end) for f in tagger.find(record["full_text"])]
        for gold in record["spans"]:
            if gold["entity_type"] in ("PERSON", "STREET_ADDRESS", "GPE", "ORGANIZATION"):
                total += 1
                a, b = gold["start_position"], gold["end_position"]
                caught += any(a < end and start < b for start, end in spans)
    assert total > 50
    assert caught / total > 0.85


def test_the_slice_comes_from_templates_held_out_of_training() -> None:
    """The slice's templates are on the held-out side of the training split (a change to the
    split must come with a new slice), computed from the data set's template ids."""
    import json

    from stackyard.guardrails.ner_training import split

    data = json.loads(HELD_OUT.read_text(encoding="utf-8"))
    training, held_out = split([{"template_id": t} for t in data["templates"]])
    assert training
    assert held_out
    held = {r["template_id"] for r in held_out}
    assert {r["template_id"] for r in data["records"]} <= held


def test_a_vault_with_the_tagger_redacts_and_restores(tagger: EntityTagger) -> None:
    text = "Hi, I am Ada Lovelace from Madrid; mail ada@example.org."
    vault = Vault(None, tagger)
    asyncio.run(vault.prepare([text, text]))
    redacted = vault.redact(text)
    assert redacted.startswith("Hi, I am <PERSON_1> from <")
    assert redacted.endswith("; mail <EMAIL_1>.")
    assert "Madrid" not in redacted
    assert vault.restore(redacted) == text
    assert vault.restore("Dear <PERSON_1>") == "Dear Ada Lovelace"
    names_only: Any = Vault(frozenset({"PERSON"}), tagger)
    assert names_only.redact(text) == "Hi, I am <PERSON_1> from Madrid; mail ada@example.org."


def test_a_vault_uses_what_the_injection_rail_read_and_lets_it_go(tagger: EntityTagger) -> None:
    text = "Please call Maria Schmidt in Vienna."
    readings = {text: read(tagger.embedder, text, whole=True)}
    vault = Vault(None, tagger, readings)
    asyncio.run(vault.prepare([text]))
    assert readings == {}  # used once, then dropped with the request's other state
    assert vault.redact(text) == Vault(None, tagger).redact(text)
    assert "Maria" not in vault.redact(text)


@pytest.mark.parametrize(
    "arguments",
    ['{"name": "Ada Lovelace"}', '{"query": "find Oskar Lindqvist"}', '{"q":"find John Smith"}'],
)
def test_a_name_in_an_earlier_tool_calls_arguments_is_redacted(
    tagger: EntityTagger, arguments: str
) -> None:
    """Read as raw JSON, among quotes and keys, the tagger missed these names (or half of
    them); each string value is now read on its own."""
    from stackyard.guardrails.redaction import redacted

    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": arguments}}
    body = {"messages": [{"role": "assistant", "content": None, "tool_calls": [call]}]}
    out = asyncio.run(redacted(body, Vault(None, tagger)))
    sent = out["messages"][0]["tool_calls"][0]["function"]["arguments"]
    name = json.loads(arguments)
    words = " ".join(name.values()).split()[-2:]
    assert not any(word in sent for word in words), sent
    assert "<PERSON_1>" in sent
    assert json.loads(sent).keys() == name.keys()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Order 4417 shipped yesterday.", []),  # was a card
        ("Upgrade to version 2.4.10.1 or v1.2.3 today.", []),  # was an IP
        ("Meet on 2024-03-05 room 204.", [("DATE", "2024-03-05")]),  # were three addresses
        ("Call me at 555-1234", [("PHONE", "555-1234")]),  # was two phone numbers
        ("Room 1204 is booked; see ticket #48213.", []),  # were two addresses
        ("Flight BA 287 leaves at 14:35.", []),  # was an address
        ("Dinner at Priya's flat at 7pm.", [("PERSON", "Priya"), ("DATE", "7pm")]),
        ("My zip code is 48213", [("ADDRESS", "48213")]),  # a postcode's word before it
        (  # a flat's number and a postcode beside the places they belong to
            "Send it to 5B Lakshmi Residency, Aundh, Pune 411007.",
            [
                ("ADDRESS", "5B"),
                ("PERSON", "Lakshmi Residency"),
                ("LOCATION", "Aundh, Pune"),
                ("ADDRESS", "411007"),
            ],
        ),
        (  # one address, one placeholder
            "Ship to 2240 W Division St, Chicago, IL 60622.",
            [("ADDRESS", "2240 W Division St, Chicago, IL 60622")],
        ),
    ],
)
def test_numbers_in_ordinary_text_keep_their_kind(
    tagger: EntityTagger, text: str, expected: list[tuple[str, str]]
) -> None:
    assert finds(tagger, text) == expected


def test_places_and_organisations_need_the_floors_confidence(tagger: EntityTagger) -> None:
    text = "Born 1984-03-12, Pedro Alvarez works for Acme Corp in Madrid."
    every = {f.kind for f in tagger.find(text, None, None, 0.0)}
    assert {"LOCATION", "ORGANIZATION", "PERSON"} <= every
    sure = {f.kind for f in tagger.find(text, None, None, 1.0)}
    assert "PERSON" in sure
    assert not sure & {"LOCATION", "ORGANIZATION"}


@pytest.mark.parametrize(
    "text",
    [
        "What did Isaac Newton publish in 1687?",
        "Why did Martin Luther post the Ninety-five Theses?",
        "Which team did Michael Jordan win six titles with?",
    ],
)
def test_public_subjects_names_are_left_alone_unless_the_policy_says_otherwise(
    tagger: EntityTagger, text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second head reads these names as public subjects (the sentence gate, which would
    pass them too, is set aside): nothing to redact, by default; the tagger alone finds each."""
    assert tagger.public is not None
    monkeypatch.setattr(tagger, "gate", None)
    assert [f for f in tagger.find(text) if f.kind in ner.PUBLIC_KINDS] == []
    every = tagger.find(text, public_names=False)
    assert any(f.kind == "PERSON" for f in every), every


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Please email Priya Raman the minutes from today's meeting.", "Priya Raman"),
        ("Remind me to call Dariusz Kowalczyk about the invoice on Friday.", "Dariusz Kowalczyk"),
        ("My cousin Lena Hartmann asked who discovered penicillin.", "Lena Hartmann"),
    ],
)
def test_a_private_persons_name_is_still_redacted(
    tagger: EntityTagger, text: str, name: str
) -> None:
    assert ("PERSON", name) in finds(tagger, text)


def test_a_vault_can_redact_public_names_too(tagger: EntityTagger) -> None:
    text = "What did Isaac Newton publish in 1687?"
    assert Vault(None, tagger).redact(text) == text
    assert "Newton" not in Vault(None, tagger, public_names=False).redact(text)


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("14 Carver St", "ADDRESS"),
        ("LS6 2QT", "ADDRESS"),  # a postcode with no word of three letters
        ("K1A 0B1", "ADDRESS"),
        ("MI 48213", "ADDRESS"),
        ("7pm", "DATE"),
        ("10:30pm", "DATE"),
        ("09:20", "DATE"),
        ("14th", "DATE"),
        ("05.04", "DATE"),
        ("(2024)", "DATE"),
        ("1204", None),
        ("BA 287", None),
        ("56B", None),
        ("e29b-41d4", None),
        ("850 sq", None),
        ("234.56", None),
        ("23 December", "DATE"),
        ("Sat 8am", "DATE"),
        ("Easter 2024", "DATE"),
        ("Calle Mayor", "ADDRESS"),  # a street's word in another language
        ("Oak Place", "ADDRESS"),
        ("PSC 6293, Box 8158", "ADDRESS"),  # a forces' postal address
        ("Germany 74285", "ADDRESS"),  # a place and a postcode
        ("Ezra, 14", "ADDRESS"),  # a name and an age, which the tagger calls an address
        ("SKU 4410", None),  # a label and a number
        ("Terminal 1", None),
        ("centre 4410", None),
        ("VAT", "LOCATION"),  # an acronym may be a place's name: kept, as a place
        ("São Paulo", "LOCATION"),  # a place alone is a place, not an address
        ("Leeds", "LOCATION"),
        ("US", None),  # two letters
        ("floor", None),  # a word in lower case
        ("the way 2", None),  # "way" is a street's only when capitalised
    ],
)
def test_an_address_is_read_by_its_shape(value: str, kind: str | None) -> None:
    """What the tagger read as an address: a street or a postcode stays one, a time, a day or
    a year is a date, and digits with short runs of letters are neither by their shape alone
    (they are an address only beside a place: the tagger's cases above)."""
    assert addresses.address_kind(value, 0, len(value)) == kind


def test_a_piece_of_a_numeric_date_is_a_date() -> None:
    text = "lease start 2022-01-15"
    start = text.index("2022")
    assert addresses.address_kind(text, start, start + 7) == "DATE"


def test_a_number_beside_a_street_word_or_a_postcode_is_an_address() -> None:
    """The tagger cuts addresses short: "64 Main" of "64 Main Street", "3PT" of "LE2 3PT"."""
    text = "Sean Gallagher, 64 Main Street, Ennis; post to Leicester LE2 3PT."
    start = text.index("64 Main")
    assert addresses.address_kind(text, start, start + 7) == "ADDRESS"
    start = text.index("3PT")
    assert addresses.address_kind(text, start, start + 3) == "ADDRESS"


def test_a_name_the_tokenizer_splits_makes_a_number_an_address() -> None:
    """A rare word (in pieces) beside a number is a street's name; a known word is not."""
    text = "Meet at Ermou 45 or at Terminal 45."
    first = (text.index("Ermou"), text.index("Ermou") + len("Ermou"))
    start = text.index("Ermou")
    assert addresses.address_kind(text, start, start + 8, [first]) == "ADDRESS"
    start = text.index("Terminal")
    assert addresses.address_kind(text, start, start + 11, [first]) is None


@pytest.mark.parametrize(
    ("value", "ok"), [("2B", False), ("3C", False), ("5th", True), ("7pm", True), ("May 5", True)]
)
def test_a_date_the_tagger_found_with_letters_needs_a_word_or_a_dates_suffix(
    value: str, ok: bool
) -> None:
    text = f"on {value} then"
    assert ner.shaped("DATE", text, 3, 3 + len(value)) is ok


@pytest.mark.parametrize(
    ("text", "word", "common"),
    [
        ("A great song with a mandolin coda.", "coda", True),  # capitals: a common word
        ("Meal prep: 750 g broccoli per box.", "broccoli", True),
        ("my ex rhiannon still lives in cardiff", "cardiff", False),  # all lower case: maybe
        ("Ship to 2-8-11 Kichijoji-honcho, Tokyo.", "honcho", False),  # a piece of a name
        ("We met Ana in Lisbon.", "Lisbon", False),  # capitalised
    ],
)
def test_a_word_in_lower_case_is_common_where_the_text_has_capitals(
    text: str, word: str, common: bool
) -> None:
    start = text.index(word)
    assert ner.common_word(text, start, start + len(word)) is common
    assert ner.shaped("LOCATION", text, start, start + len(word)) is not common


def test_a_time_zones_city_is_no_ones_place() -> None:
    text = "Convert 11:00 Europe/Berlin to America/Sao_Paulo, for the client in Berlin."
    assert not ner.shaped("LOCATION", text, text.index("Berlin"), text.index("Berlin") + 6)
    assert not ner.shaped("LOCATION", text, text.index("Sao_Paulo"), text.index("Sao_Paulo") + 9)
    assert ner.shaped("LOCATION", text, text.rindex("Berlin"), text.rindex("Berlin") + 6)


def test_a_place_the_tagger_read_as_an_address_is_a_place(tagger: EntityTagger) -> None:
    text = "Removal costs from Manchester to Berlin in August?"
    assert ("LOCATION", "Berlin") in [(f.kind, f.value) for f in tagger.find(text)]
    assert tagger.find(text, frozenset({"ADDRESS"})) == []  # a city is not a postal address


def test_a_place_the_tagger_read_as_an_address_is_found_where_only_places_are_wanted(
    tagger: EntityTagger,
) -> None:
    text = "Removal costs from Manchester to Berlin in August?"
    places = tagger.find(text, frozenset({"LOCATION"}))
    assert ("LOCATION", "Berlin") in [(f.kind, f.value) for f in places]
    assert {f.kind for f in places} == {"LOCATION"}
