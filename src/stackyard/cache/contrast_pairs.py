"""Generated training pairs for the pair classifier (issue 34, item 2): from a training
question, *contrast* negatives by an edit that changes the answer (an antonym or a sibling
term of the contrast guard's lists, another number, an added or removed negation, a swapped
role, another name), and *paraphrase* positives by edits that keep it (a contraction, a
function-word rewording, a hand-listed synonym, a clause moved to the front).

Only training questions go in (:func:`stackyard.cache.training.train` passes QQP's training
split and MRPC's training file, never the held-out or calibration splits), so the held-out
figures stay held out.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence

from stackyard.cache import contrast_terms as terms

Pair = tuple[str, str, bool]
WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")
NUMBER = re.compile(r"\b\d+\b")
AUXILIARIES = re.compile(
    r"\b(is|are|was|were|can|could|should|will|would|does|do|did|has|have)\b(?!n't)",
    re.IGNORECASE,
)
NEGATED = re.compile(r"\b(\w+)n't\b|\b(not|never) ", re.IGNORECASE)
ROLE = re.compile(r"\bfrom ([\w'-]+(?: [\w'-]+)?) to ([\w'-]+(?: [\w'-]+)?)\b")
THAN = re.compile(r"\b([\w'-]+) (\w+er) than ([\w'-]+)\b")
CLAUSE = re.compile(r"^(.*\S) (if|when|after|before|while) (.+?)([?.!]?)$", re.IGNORECASE)
CONTRACTIONS = [
    ("do not", "don't"),
    ("does not", "doesn't"),
    ("did not", "didn't"),
    ("cannot", "can't"),
    ("is not", "isn't"),
    ("are not", "aren't"),
    ("was not", "wasn't"),
    ("will not", "won't"),
    ("would not", "wouldn't"),
    ("should not", "shouldn't"),
    ("have not", "haven't"),
    ("I am", "I'm"),
    ("I have", "I've"),
    ("what is", "what's"),
    ("it is", "it's"),
    ("there is", "there's"),
]
FUNCTION_SWAPS = [
    ("How do I", "How can I"),
    ("How can I", "How do I"),
    ("What is the best way to", "How do I"),
    ("What's the best way to", "How can I"),
    ("Is it possible to", "Can I"),
    ("Can I", "Is it possible to"),
    ("Is there a way to", "Can I"),
    ("How should I", "How do I"),
    ("What are some ways to", "How can I"),
    ("What should I do to", "How do I"),
]
#: Surface synonyms that are safe to swap anywhere (the guard's lists are stems).
SYNONYMS = [
    {"buy", "purchase"},
    {"bought", "purchased"},
    {"change", "modify"},
    {"delete", "remove"},
    {"get", "obtain"},
    {"fast", "quickly"},
    {"film", "movie"},
    {"films", "movies"},
    {"photo", "picture"},
    {"photos", "pictures"},
    {"improve", "enhance"},
    {"begin", "start"},
    {"big", "large"},
    {"help", "assist"},
    {"choose", "pick"},
    {"good", "great"},
    {"package", "parcel"},
    {"shipping", "delivery"},
    {"mistake", "error"},
    {"error", "mistake"},
]


def _surface() -> dict[str, list[list[str]]]:
    """Each word of the antonym and sibling lists: the other senses of its group."""
    found: dict[str, list[list[str]]] = {}
    for group in (*terms.ANTONYMS, *terms.SIBLINGS):
        senses = [sorted(w for w in sense if w.isalpha() and len(w) > 2) for sense in group]
        for s, sense in enumerate(senses):
            others = [o for i, o in enumerate(senses) if i != s and o]
            for word in sense:
                found.setdefault(word, []).extend(others)
    return found


SURFACE = _surface()
#: Words seen in lower case, set by :func:`generate` (a capitalised one of them is no name).
COMMON: frozenset[str] = frozenset()


def _cased(word: str, like: str) -> str:
    return word.capitalize() if like[:1].isupper() else word


def antonym_or_sibling(text: str, rng: random.Random, names: Sequence[str]) -> str | None:
    words = [m for m in WORD.finditer(text) if m.group().lower() in SURFACE]
    if not words:
        return None
    match = rng.choice(words)
    other = rng.choice(rng.choice(SURFACE[match.group().lower()]))
    return text[: match.start()] + _cased(other, match.group()) + text[match.end() :]


def number(text: str, rng: random.Random, names: Sequence[str]) -> str | None:
    found = list(NUMBER.finditer(text))
    if not found:
        return None
    match = rng.choice(found)
    value = int(match.group()[:9])
    other = rng.choice([value + rng.randint(1, 9), value * 10, max(0, value - 1) or value + 2])
    return text[: match.start()] + str(other) + text[match.end() :]


def negation(text: str, rng: random.Random, names: Sequence[str]) -> str | None:
    negated = NEGATED.search(text)
    if negated:
        if negated.group(1):
            base = negated.group(1)
            base = {"wo": "will", "ca": "can", "sha": "shall"}.get(base.lower(), base)
            return text[: negated.start()] + base + text[negated.end() :]
        return text[: negated.start()] + text[negated.end() :]
    aux = AUXILIARIES.search(text)
    if aux is None:
        return None
    word = aux.group()
    negative = {"will": "won't", "can": "can't", "shall": "shan't"}.get(word.lower(), word + "n't")
    return text[: aux.start()] + _cased(negative, word) + text[aux.end() :]


def role(text: str, rng: random.Random, names: Sequence[str]) -> str | None:
    match = ROLE.search(text)
    if match and match.group(1).lower() != match.group(2).lower():
        swapped = f"from {match.group(2)} to {match.group(1)}"
        return text[: match.start()] + swapped + text[match.end() :]
    match = THAN.search(text)
    if match and match.group(1).lower() != match.group(3).lower():
        swapped = f"{match.group(3)} {match.group(2)} than {match.group(1)}"
        return text[: match.start()] + swapped + text[match.end() :]
    return None


def _names(text: str, common: frozenset[str]) -> list[re.Match[str]]:
    """Capitalised words inside a sentence that are never written in lower case."""
    return [
        m
        for m in WORD.finditer(text)
        if m.start() > 0
        and text[: m.start()].rstrip()[-1:] not in '.?!:"'
        and m.group()[0].isupper()
        and not m.group().isupper()
        and m.group().lower() not in common
    ]


def name(text: str, rng: random.Random, names: Sequence[str]) -> str | None:
    found = _names(text, COMMON)
    if not found or not names:
        return None
    match = rng.choice(found)
    other = rng.choice(names)
    if other.lower() == match.group().lower():
        return None
    return text[: match.start()] + other + text[match.end() :]


def contraction(text: str, rng: random.Random) -> str | None:
    options = []
    for long, short in CONTRACTIONS:
        for a, b in ((long, short), (short, long)):
            at = text.lower().find(a.lower())
            if at >= 0 and re.match(r"\b", text[at:]) and not text[at + len(a) :][:1].isalpha():
                options.append((at, len(a), _cased(b, text[at : at + 1]) if at == 0 else b))
    if not options:
        return None
    at, length, replacement = rng.choice(options)
    return text[:at] + replacement + text[at + length :]


def function_words(text: str, rng: random.Random) -> str | None:
    options = [(a, b) for a, b in FUNCTION_SWAPS if text.startswith(a + " ")]
    if not options:
        return None
    a, b = rng.choice(options)
    return b + text[len(a) :]


def synonym(text: str, rng: random.Random) -> str | None:
    found = []
    for match in WORD.finditer(text):
        for group in SYNONYMS:
            if match.group().lower() in group:
                others = sorted(group - {match.group().lower()})
                found.append((match, others))
    if not found:
        return None
    match, others = rng.choice(found)
    return text[: match.start()] + _cased(rng.choice(others), match.group()) + text[match.end() :]


def reorder(text: str, rng: random.Random) -> str | None:
    match = CLAUSE.match(text.strip())
    if match is None or len(match.group(3).split()) < 2 or len(match.group(1).split()) < 3:
        return None
    main, word, clause, end = match.groups()
    return f"{word.capitalize()} {clause}, {main[0].lower()}{main[1:]}{end}"


Contrast = Callable[[str, random.Random, Sequence[str]], str | None]
Paraphrase = Callable[[str, random.Random], str | None]
CONTRAST: list[Contrast] = [
    antonym_or_sibling,
    number,
    negation,
    role,
    name,
]
PARAPHRASE: list[Paraphrase] = [
    contraction,
    function_words,
    synonym,
    reorder,
]


def generate(questions: Sequence[str], count: int, rng: random.Random) -> list[Pair]:
    """Up to ``count`` contrast negatives and ``count`` paraphrase positives, each from a
    different question where it can, the edit chosen at random among those that apply."""
    global COMMON
    pool = sorted({q.strip() for q in questions if 3 <= len(q.split()) <= 40})
    rng.shuffle(pool)
    COMMON = frozenset(m.group() for q in pool for m in WORD.finditer(q) if m.group().islower())
    names = sorted({m.group() for q in pool[:20_000] for m in _names(q, COMMON)})
    negatives: list[Pair] = []
    positives: list[Pair] = []
    for question in pool:
        if len(negatives) < count:
            for edit in rng.sample(CONTRAST, len(CONTRAST)):
                edited = edit(question, rng, names)
                if edited and edited != question:
                    negatives.append((question, edited, False))
                    break
        if len(positives) < count:
            for change in rng.sample(PARAPHRASE, len(PARAPHRASE)):
                edited = change(question, rng)
                if edited and edited != question:
                    positives.append((question, edited, True))
                    break
        if len(negatives) >= count and len(positives) >= count:
            break
    return negatives + positives
