"""Names, postal addresses, places, organisations, dates and the like: a token tagger on the
in-process embedding model, for what no pattern can find.

The first two of all-MiniLM-L6-v2's six layers read the text (in windows of 256 word pieces;
a third of the model's cost, about 12 ms for 500 characters on two cores; nothing, when the
injection rail has read the text already: :mod:`stackyard.guardrails.reading`); each word piece's
hidden state goes through a small two-layer network that says which kind of entity the piece
belongs to, if any. The network's weights (``ner.npz`` beside this module, 200 KB) were
trained by ``make guardrails-ner`` on the Presidio synthetic PII sentences, holding out whole
templates for the benchmark, and on texts dense with numbers, codes and labels
(``ner_structured.jsonl``), where most of what looks like an entity is not one. Pieces become
words, and words of one kind separated only by spaces or punctuation become one span (a
postal address over several lines is one placeholder). No download and no LLM: the model is
the one the embeddings already use.

A second head on the same states (``ner_public.npz``, trained beside the first with written
questions about public subjects and private people) reads each name, organisation and group
the tagger finds: one it reads as a public subject ("What did Isaac Newton publish?") is left
alone, unless the policy says ``public_names: false``. Before it, a gate reads each sentence
that holds a find (:mod:`stackyard.guardrails.subjects`): in a sentence about public subjects
("Where did Napoleon die in 1821?"), names, places and addresses are all left alone.
"""

from __future__ import annotations

import logging
import re
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

from stackyard.guardrails import subjects
from stackyard.guardrails.addresses import LETTERS, address_kind, titled
from stackyard.guardrails.pii import Found
from stackyard.guardrails.reading import PIECE_LAYER, Reading, deeper, read
from stackyard.guardrails.shapes import (
    DOTTED,
    VALID,
    glued,
    ip_in_context,
    is_date,
    phone_in_context,
)

log = logging.getLogger("stackyard.guardrails")

WEIGHTS = Path(__file__).with_name("ner.npz")
#: A second head on the same states, trained with questions about public subjects as well
#: (:data:`stackyard.guardrails.ner_training.WRITTEN`): where it sees no entity in a name the
#: tagger found, the name is a public subject's ("Who did Napoleon defeat at Austerlitz?").
PUBLIC_WEIGHTS = Path(__file__).with_name("ner_public.npz")
#: The hidden states read by the tagger (see :data:`stackyard.guardrails.reading.PIECE_LAYER`).
LAYER = PIECE_LAYER
#: What the tagger knows. TITLE (Mr., job titles) is tagged so that it is not confused with a
#: name, but it is not PII and is not redacted unless asked for.
KINDS = (
    "PERSON",
    "ADDRESS",
    "LOCATION",
    "ORGANIZATION",
    "DATE",
    "AGE",
    "NRP",
    "TITLE",
    "CARD",
    "EMAIL",
    "PHONE",
    "IBAN",
    "SSN",
    "IP",
    "ID",
    "URL",
)
NOT_PII = frozenset({"TITLE"})
#: What a tagged span of a kind with a shape must hold (an email without an @ is a word the
#: tagger read in an email's context, not an email).
ANY = re.compile(r"")
WORDS = re.compile(r"[^\W_]+")
DIGIT = re.compile(r"\d")
SHAPES = {
    "EMAIL": re.compile(r"@"),
    "URL": re.compile(r"\w\.\w"),
    "CARD": DIGIT,
    "PHONE": DIGIT,
    "IBAN": DIGIT,
    "SSN": DIGIT,
    "IP": DIGIT,
    "ID": DIGIT,
}
#: Words that are never an entity alone (a stray "the" in a long text).
FILLER = frozenset(
    re.findall(
        r"\w+",
        "a an and as at by for from he her his i in is it its me my of on or our she the "
        "their them they this to was we with you your",
    )
)
#: Text allowed between two words of one entity (an address's commas and line breaks).
JOINER = re.compile(r"[\s,./#\-]*")
#: Punctuation a span does not end with (a sentence's full stop, a list's comma).
TRAILING = " \t\n,.;:!?-/#"
#: The kinds that need :data:`PLACE_FLOOR`'s confidence: a capitalised word is easily read as
#: a place or a firm ("How did the Normans..."), and a miss costs least there.
FLOORED = frozenset({"LOCATION", "ORGANIZATION"})
#: The default of ``guardrails.pii.place_confidence``.
PLACE_FLOOR = 0.3
#: Kinds that are words: a bare number is none of them.
WORDY = frozenset({"PERSON", "LOCATION", "ORGANIZATION", "NRP", "TITLE"})

#: What an address the tagger finds may turn out to be (:func:`address_kind`): it is read
#: where these are wanted, even where addresses are not.
RETYPED = frozenset({"LOCATION", "DATE"})

#: The kinds the public head may pass over: names of people, organisations and groups.
#: Not places: where a private person lives or works ("works for Acme in Madrid") is theirs,
#: and the head learned that less surely than it learned names.
PUBLIC_KINDS = frozenset({"PERSON", "ORGANIZATION", "NRP"})


class EntityTagger:
    """``embedder`` is a loaded sentence-transformers model (all-MiniLM-L6-v2)."""

    def __init__(
        self,
        embedder: Any,
        weights: Path = WEIGHTS,
        public: Path = PUBLIC_WEIGHTS,
        gate: Path = subjects.WEIGHTS,
    ) -> None:
        import numpy as np
        import torch

        self.embedder = embedder
        data = np.load(weights, allow_pickle=False)
        self.kinds = tuple(str(k) for k in data["kinds"])
        self.layer = int(data["layer"])
        self.threshold = float(data["threshold"])
        self.w1 = torch.from_numpy(data["w1"].astype(np.float32))
        self.b1 = torch.from_numpy(data["b1"].astype(np.float32))
        self.w2 = torch.from_numpy(data["w2"].astype(np.float32))
        self.b2 = torch.from_numpy(data["b2"].astype(np.float32))
        self.public: tuple[Any, ...] | None = None
        if public.exists():
            head = np.load(public, allow_pickle=False)
            self.public = (
                *(torch.from_numpy(head[k].astype(np.float32)) for k in ("w1", "b1", "w2", "b2")),
                float(head["threshold"]),
            )
        self.gate = subjects.load(gate, embedder)
        self._lock = threading.Lock()

    def piece_probabilities(
        self, text: str, reading: Reading | None = None
    ) -> tuple[list[tuple[int, int]], Any]:
        """The word pieces' character offsets, and for each piece the probability of each
        label (column 0: no entity; then ``self.kinds``). ``reading``: the text as another
        rail already read it (the model is not run again)."""
        reading, probs = self._read(text, reading)
        return reading.offsets, probs

    def _read(self, text: str, reading: Reading | None) -> tuple[Reading, Any]:
        """The read :meth:`piece_probabilities` uses (``reading``, or the tagger's own), and
        its probabilities."""
        import torch

        if reading is None or reading.layer != self.layer:
            with self._lock:
                reading = read(self.embedder, text, self.layer)
        with torch.inference_mode():
            hidden = torch.nn.functional.gelu(reading.states @ self.w1 + self.b1)
            probs = (hidden @ self.w2 + self.b2).softmax(-1).numpy()
        return reading, probs

    def _deeper(self, reading: Reading, gate: subjects.SubjectGate) -> Any:
        """The pieces' states after the gate's layer, run on from ``reading``."""
        assert gate.depth is not None
        with self._lock:
            return deeper(self.embedder, reading, gate.depth, gate.blocks)

    def _public(self, states: Any, spans: list[list[int]]) -> list[bool]:
        """For each span's word pieces, whether the public head reads them as no entity: a
        public subject. One pass over the pieces of all of them."""
        import torch

        assert self.public is not None
        w1, b1, w2, b2, threshold = self.public
        rows = sorted({i for pieces in spans for i in pieces})
        at = {piece: n for n, piece in enumerate(rows)}
        with torch.inference_mode():
            inner = torch.nn.functional.gelu(states[rows] @ w1 + b1)
            private = (1 - (inner @ w2 + b2).softmax(-1)[:, 0]).numpy()
        return [float(private[[at[i] for i in p]].mean()) < float(threshold) for p in spans]

    def find(
        self,
        text: str,
        kinds: frozenset[str] | None = None,
        reading: Reading | None = None,
        floor: float = PLACE_FLOOR,
        public_names: bool = True,
    ) -> list[Found]:
        """Entities in ``text`` (by default every kind but TITLE), in order of position.
        ``floor``: the confidence a place or an organisation needs (see :func:`confident`).
        ``public_names``: leave out names, places and addresses in sentences the gate
        (:mod:`stackyard.guardrails.subjects`) reads as about public subjects, and names of
        people, organisations and groups that the public head (:data:`PUBLIC_WEIGHTS`) reads
        as public subjects, not private ones."""
        if not text.strip():
            return []
        reading, probs = self._read(text, reading)
        offsets, states = reading.offsets, reading.states
        wanted = kinds if kinds is not None else frozenset(self.kinds) - NOT_PII
        spans: list[_Span] = []
        rare: list[tuple[int, int]] = []  # words the tokenizer splits: names, not words
        for first, last in group_words(text, offsets):
            p = probs[first:last].mean(0) if last - first > 1 else probs[first]
            start, end = offsets[first][0], offsets[last - 1][1]
            if last - first > 1:
                rare.append((start, end))
            if 1.0 - float(p[0]) < self.threshold:
                continue
            word = text[start:end]
            before = spans[-1] if spans else None
            if before is not None and JOINER.fullmatch(text, before.end, start):
                if not any(c.isalnum() for c in word):
                    before.end = end  # punctuation is part of the entity it is in
                    continue
                if before.kind(self.kinds) == self.kinds[int(p[1:].argmax())] or (
                    word.isalpha() and before.alpha and not text[before.end : start].strip()
                ):  # one kind, or names in a row ("Ada" taken for a place, "Lovelace")
                    before.add(end, p, word.isalpha())
                    continue
            if any(c.isalnum() for c in word):  # punctuation starts no entity
                spans.append(_Span(start, end, p, word.isalpha()))
        found = []
        # addresses that are times or days, or places alone, retyped last
        retyped: dict[tuple[int, int], str] = {}
        for index, span in enumerate(spans):
            a, b = span.start, len(text[: span.end].rstrip(TRAILING))
            kind = span.kind(self.kinds)
            if (
                (kind in wanted or (kind == "ADDRESS" and not wanted.isdisjoint(RETYPED)))
                and confident(kind, span.confidence(self.kinds), floor)
                and shaped(kind, text, a, b)
                and not FILLER.issuperset(w.lower() for w in WORDS.findall(text, a, b))
            ):
                if kind == "ADDRESS":
                    read_as = address_kind(text, a, b, rare)
                    if read_as != "ADDRESS" and DIGIT.search(text, a, b) and glued(text, a, b):
                        continue  # a code's piece ("INV-2024-00417", "RMA-77120")
                    if read_as is None and self._beside(text, spans, index, a):
                        read_as = "ADDRESS"
                    if read_as is None or read_as not in wanted:
                        continue
                    if read_as != kind:
                        retyped[(a, b)] = read_as
                found.append(Found(a, b, kind, text[a:b]))
        if public_names and self.gate is not None:
            gated = [f for f in found if f.kind in subjects.KINDS]
            if gated:  # a sentence about public subjects: its names and places are no one's data
                gate = self.gate
                verdicts = gate.public(
                    text,
                    offsets,
                    states,
                    [(f.start, f.end) for f in gated],
                    None if gate.depth is None else lambda: self._deeper(reading, gate),
                )
                passed = {id(f) for f, p in zip(gated, verdicts, strict=True) if p}
                found = [f for f in found if id(f) not in passed]
        if public_names and self.public is not None:
            named = [f for f in found if f.kind in PUBLIC_KINDS]
            pieces = [
                [i for i, (x, y) in enumerate(offsets) if x < f.end and f.start < y] for f in named
            ]
            if named:  # a public subject's name, not a private person's, is left alone
                public = {
                    id(f) for f, p in zip(named, self._public(states, pieces), strict=True) if p
                }
                found = [f for f in found if id(f) not in public]
        if retyped:  # after the gates, which leave a public sentence's addresses alone
            found = [
                Found(f.start, f.end, retyped.get((f.start, f.end), f.kind), f.value)
                for f in found
                if retyped.get((f.start, f.end), f.kind) in wanted
            ]
        return found

    def _beside(self, text: str, spans: list[_Span], index: int, start: int) -> bool:
        """Whether a number (or a code) the tagger read as an address is part of one: a
        postcode's word before it ("zip code is 48213"), or a place, a street or a name beside
        it ("Detroit, MI 48213", "10115 Berlin", "5B Lakshmi Residency", "Calle Mayor 14").
        Alone, it is a room, a ticket, a score or a code ("Room 1204", "#48213", "gate B42")."""
        if POSTCODE_WORD.search(text, max(0, start - 25), start):
            return True
        span = spans[index]
        beside = []  # each neighbour, and where the text between them lies
        if index > 0:
            beside.append((spans[index - 1], spans[index - 1].end, span.start))
        if index + 1 < len(spans):
            beside.append((spans[index + 1], span.end, spans[index + 1].start))
        return any(
            other.kind(self.kinds) in PLACES
            and any(titled(w) for w in LETTERS.findall(text, other.start, other.end))
            and NEIGHBOURS.fullmatch(text, gap_start, gap_end) is not None
            for other, gap_start, gap_end in beside
        )


#: Words that say the number after them is a postcode.
POSTCODE_WORD = re.compile(
    r"(?i)\b(?:zip|zip\s?code|post\s?code|postal(?:\s?code)?|postleitzahl|plz|cep|pin\s?code"
    r"|eircode)\b(?:\s+(?:is|was))?[\s:#.-]*$"
)
#: The kinds an address's number stands beside (a street may be named for a person), and
#: what may stand between them: a comma, a hyphen, spaces and a state's or province's
#: letters ("Detroit, MI 48213", "Mapo-gu").
PLACES = frozenset({"ADDRESS", "LOCATION", "PERSON", "ORGANIZATION"})
NEIGHBOURS = re.compile(r"[\s,-]*(?:[A-Z]{2,3}[\s,]*)?")


class _Span:
    """Words read as one entity: where, and the sum of their labels' probabilities."""

    __slots__ = ("alpha", "count", "end", "start", "total")

    def __init__(self, start: int, end: int, p: Any, alpha: bool) -> None:
        self.start, self.end, self.total, self.count, self.alpha = start, end, p.copy(), 1, alpha

    def add(self, end: int, p: Any, alpha: bool) -> None:
        self.end, self.count, self.alpha = end, self.count + 1, self.alpha and alpha
        self.total += p

    def kind(self, kinds: tuple[str, ...]) -> str:
        return kinds[int(self.total[1:].argmax())]

    def confidence(self, kinds: tuple[str, ...]) -> float:
        """The mean probability of the span's kind over its words."""
        return float(self.total[1 + int(self.total[1:].argmax())]) / self.count


def confident(kind: str, confidence: float, floor: float) -> bool:
    return kind not in FLOORED or confidence >= floor


#: The region of a time zone's name ("Europe/Berlin", "America/Sao_Paulo"): the city after it
#: names a clock, not where anyone is.
TIMEZONE_BEFORE = re.compile(
    r"\b(?:Africa|America|Antarctica|Asia|Atlantic|Australia|Europe|Indian|Pacific|Etc)/$"
)
#: A hyphen or an apostrophe beside a word (``|`` stands for the word): a piece of a longer
#: name ("Kichijoji-honcho", "O'neill").
JOINED = re.compile("[-'\u2019]\\||\\|[-'\u2019]")
#: The first letter of each sentence.
SENTENCE_START = re.compile(r"(?:^|[.!?]\s+)[\W\d_]*([^\W\d_])")


@lru_cache(maxsize=32)
def cased(text: str) -> bool:
    """Whether ``text`` is written with capitals: a sentence of it starts with one. There, a
    word in lower case is a common word, not a name; in text typed all in lower case
    ("my ex rhiannon lives in cardiff") it may be either."""
    return any(m[1].isupper() for m in SENTENCE_START.finditer(text))


def common_word(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` is one word in lower case, alone (not joined to another by
    a hyphen or apostrophe), in text written with capitals: a common word ("coda", "reship",
    "broccoli"), not a name or a place."""
    word = text[start:end]
    if not (word.isalpha() and word.islower()) or not cased(text):
        return False
    return not JOINED.search(text[max(0, start - 1) : start] + "|" + text[end : end + 1])


def shaped(kind: str, text: str, start: int, end: int) -> bool:
    """Whether the tagger's find of ``kind`` at ``text[start:end]`` looks like one: what has a
    pattern's shape must pass that pattern's checks (:mod:`stackyard.guardrails.shapes`), a
    phone number is not a piece of a code, a date is a date, a name or a place has letters
    and is not a common word (:func:`common_word`) nor a time zone's city,
    and an address that is only a number is a postcode's four to six digits (not a room
    number; :func:`address_kind` reads it further)."""
    value = text[start:end]
    if not SHAPES.get(kind, ANY).search(value):
        return False
    if TIMEZONE_BEFORE.search(text, max(0, start - 12), start):
        return False  # a time zone's city
    if (kind in WORDY or kind == "ADDRESS") and common_word(text, start, end):
        return False
    if DOTTED.match(text[max(0, start - 2) : start]) or DOTTED.match(text[end : end + 2][::-1]):
        return False  # a piece of a version or section number (2.4.10.1)
    if kind in VALID:
        return VALID[kind](value) and (kind != "PHONE" or phone_in_context(text, start, end))
    if kind == "IP":
        return ip_in_context(text, start, end)
    if kind in WORDY:
        return any(c.isalpha() for c in value)
    if kind == "ID":  # a document's number, not "1", "15" or "2x"
        return sum(c.isdigit() for c in value) >= 4
    if kind == "DATE":
        if not any(c.isalpha() for c in value):
            return is_date(value)  # a year alone is no one's date
        return any(len(w) >= 3 or w.lower() in DATE_SUFFIXES for w in LETTERS.findall(value))
    if kind == "ADDRESS" and not any(c.isalpha() for c in value):
        return 4 <= sum(c.isdigit() for c in value) <= 6 and not is_date(value)
    return True


#: Letters a date's number may carry ("5th", "7pm", "14h30"); other short runs of letters
#: beside digits make a code ("2B", "3C"), not a date.
DATE_SUFFIXES = frozenset({"st", "nd", "rd", "th", "am", "pm", "h"})


def group_words(text: str, offsets: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Ranges of word pieces that make one word: letters and digits with nothing between
    them ("Kos" "##ki" "##katu"); a punctuation mark is a word of its own."""
    groups: list[tuple[int, int]] = []
    for index, (start, _end) in enumerate(offsets):
        if (
            groups
            and start == offsets[index - 1][1]
            and text[start : start + 1].isalnum()
            and text[start - 1 : start].isalnum()
        ):
            groups[-1] = (groups[-1][0], index + 1)
        else:
            groups.append((index, index + 1))
    return groups


def load_tagger(embedding_model: str = "all-minilm-l6-v2") -> EntityTagger | None:
    """The tagger on the in-process embedding model (at start-up), or None with a warning
    when the 'local' extra is missing: then only the patterns find PII."""
    try:
        from stackyard.engine.loading import load_embedder
        from stackyard.engine.sources import resolve

        tagger = EntityTagger(load_embedder(resolve(embedding_model, "embeddings"), "cpu"))
        tagger.piece_probabilities("warm up")  # its read's graph, exported now
        return tagger
    except Exception as exc:
        log.warning("names and addresses are not redacted (no entity tagger): %s", exc)
        return None
