"""The semantic tier's verifier (groundwork; not wired into the gateway yet): after the nearest
neighbour is found, reject pairs of questions that embed close together but ask different
things: different numbers, one negated and not the other, different named entities, or a
different kind of question (why against how, who against where)."""

from __future__ import annotations

import re
from dataclasses import dataclass

RIGHT_QUOTE = "\u2019"  # typographic apostrophe
TOKEN = re.compile(r"[A-Za-z][A-Za-z'\u2019-]*|\d+(?:[.,]\d+)*")
NEGATIONS = frozenset(
    {"not", "no", "never", "none", "nobody", "nothing", "neither", "nor", "cannot", "without"}
)
NUMBER_WORDS = {
    "zero": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "ten": "10",
    "eleven": "11",
    "twelve": "12",
    "twenty": "20",
    "thirty": "30",
    "fifty": "50",
    "hundred": "100",
    "thousand": "1000",
    "million": "1000000",
    "billion": "1000000000",
    "first": "1",
    "second": "2",
    "third": "3",
}
#: The kind of answer a question asks for, from its first question word.
KINDS = {
    "why": "reason",
    "who": "person",
    "whom": "person",
    "whose": "person",
    "where": "place",
    "when": "time",
    "how": "manner",
    "what": "manner",
    "which": "manner",
    "is": "yesno",
    "are": "yesno",
    "am": "yesno",
    "was": "yesno",
    "were": "yesno",
    "do": "yesno",
    "does": "yesno",
    "did": "yesno",
    "can": "yesno",
    "could": "yesno",
    "should": "yesno",
    "would": "yesno",
    "will": "yesno",
    "has": "yesno",
    "have": "yesno",
}
CONTRACTIONS = {"can't": "can", "won't": "will", "shan't": "shall"}
#: "How many", "how much", "how long", "how old": a quantity, not a manner.
QUANTITY = frozenset({"many", "much", "long", "old", "far", "big", "often", "tall"})
#: Kinds whose questions often paraphrase each other ("Can I learn X fast?" / "How can I
#: learn X fast?").
INTERCHANGEABLE = {frozenset({"manner", "yesno"})}
#: Capitalised words that are no entity.
NOT_ENTITIES = frozenset(
    {
        "i",
        "i'm",
        "i've",
        "i'd",
        "i'll",
        "is",
        "are",
        "what",
        "why",
        "how",
        "when",
        "where",
        "who",
        "which",
        "can",
        "do",
        "does",
        "should",
        "will",
        "would",
        "could",
        "the",
        "a",
        "an",
        "my",
        "in",
        "on",
        "of",
        "for",
        "to",
        "and",
        "or",
        "if",
        "it",
        "this",
        "that",
    }
)


@dataclass(frozen=True)
class Features:
    numbers: frozenset[str]
    negated: bool
    entities: frozenset[str]
    kind: str | None


def features(text: str) -> Features:
    tokens = TOKEN.findall(text)
    lowered = [t.lower().replace(RIGHT_QUOTE, "'") for t in tokens]
    numbers = {t.replace(",", "") for t in tokens if t[0].isdigit()}
    numbers |= {NUMBER_WORDS[t] for t in lowered if t in NUMBER_WORDS}
    negations = sum(t in NEGATIONS or t.endswith("n't") for t in lowered)
    entities = set()
    for index, token in enumerate(tokens):
        word = lowered[index]
        if word in NOT_ENTITIES or token[0].isdigit():
            continue
        capitalised = token[0].isupper() and index > 0
        acronym = len(token) > 1 and token.isupper()
        if capitalised or acronym:
            entities.add(word)
    kind = None
    for index, token in enumerate(lowered):
        word = CONTRACTIONS.get(token, token.removesuffix("n't"))
        if word in KINDS:
            kind = KINDS[word]
            if word == "how" and index + 1 < len(lowered) and lowered[index + 1] in QUANTITY:
                kind = "quantity"
            break
    return Features(frozenset(numbers), negations % 2 == 1, frozenset(entities), kind)


def compatible(a: Features, b: Features) -> str | None:
    """None when the two may ask the same thing; else why they do not."""
    if a.numbers != b.numbers:
        return "different numbers"
    if a.negated != b.negated:
        return "one is negated"
    if a.entities and b.entities and not (a.entities <= b.entities or b.entities <= a.entities):
        return "different names"
    if (
        a.kind
        and b.kind
        and a.kind != b.kind
        and frozenset({a.kind, b.kind}) not in INTERCHANGEABLE
    ):
        return "a different kind of question"
    return None


def same_question(first: str, second: str) -> str | None:
    return compatible(features(first), features(second))
