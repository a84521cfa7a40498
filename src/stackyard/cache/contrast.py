"""The semantic tier's contrast guard: a cached question that differs from a new one by an
edit that changes the answer is never a hit, however close the two embed and however sure the
pair classifier is.

The two questions are aligned on their content words (lower-cased, lightly stemmed, function
words left out: a multiset difference, so that a reordering aligns), and what is left on
either side is judged. A hit is refused when it holds

- an antonym or a sibling term of a word on the other side (arrive/depart, email/phone,
  refund/exchange: :mod:`stackyard.cache.contrast_terms`);
- a unit, a currency or a date (even with nothing in its place), or other numbers, or the
  same numbers in another order;
- a name, a product or a place in place of another: a word capitalised inside the sentence,
  one that mixes letters and digits (``V15``), or, given a vocabulary, a word it does not
  know, left over on both sides (a name on one side only is not a contrast);
- a negation (``non-refundable``, ``incompatible``; negation words are counted by
  :func:`stackyard.cache.semantic.rejects`);

or when the same content stands on the other sides of a role word ("from savings to
checking" against "from checking to savings", "cheaper than"), or on the other sides of the
same verb ("the tenant pays the landlord" against "the landlord pays the tenant").

Left-over words that are a known paraphrase of each other cancel first: the same sense of a
hand-written group, one word a prefix of the other (``deliver``/``delivery``), two words that
spell one (``log in``/``login``), or a word pair that aligned as a substitution in far more of
QQP's and MRPC's *training* duplicates than their non-duplicates (``contrast_paraphrases.json``
beside this module, learned by :mod:`stackyard.cache.synonyms`).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from stackyard.cache import contrast_terms as terms
from stackyard.cache.verifier import NUMBER_WORDS

LEARNED = Path(__file__).with_name("contrast_paraphrases.json")
TOKEN = re.compile(
    r"[A-Za-z]+\d[A-Za-z\d]*|[A-Za-z][A-Za-z'\u2019]*(?:-[A-Za-z]+)*|\d+(?:[.,:]\d+)*|[$€£¥%]"
)
#: Words before a unit that make it a quantity ("per day", "every month").
COUNTING = frozenset({"per", "every", "each", "a", "an"})
SENTENCE_ENDS = '.?!:;"(\n'
TITLES = frozenset({"dr", "mr", "mrs", "ms", "prof", "st", "mt"})
#: Words that undo a swap of subject and object: the passive's "by", and pronouns that
#: may stand for a word that moved.
MOVED = frozenset({"by", "it", "them", "one"})
PLAIN_WORD = re.compile(r"[a-z]+")
#: Capitalised words that name nothing.
NOT_NAMES = frozenset({"i", "i'm", "i've", "i'd", "i'll", "ok", "okay", "hi", "hello"})


def stem(word: str) -> str:
    """A light stemmer, the same on both sides: plural, -ing, -ed, a final e."""
    if word[0].isdigit() or len(word) < 4:
        return word
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith("sses"):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    for suffix in ("ing", "ed"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "lsz":
                word = word[:-1]  # shipp(ing): ship
            break
    if len(word) > 3 and word.endswith("e"):
        word = word[:-1]
    return word


@dataclass(frozen=True, slots=True)
class Word:
    stem: str
    #: A name: capitalised inside its sentence, or letters with digits.
    name: bool
    #: What was typed, lower-cased.
    lowered: str
    #: Next to a number, or after "per" or "every": a quantity's unit.
    counted: bool = False


@dataclass(frozen=True, slots=True)
class Parsed:
    #: Content words and role markers (a marker's stem is the marker), in order.
    words: tuple[Word, ...]
    numbers: tuple[str, ...]

    @property
    def content(self) -> list[Word]:
        return [w for w in self.words if w.stem not in terms.ROLE_MARKERS]


def _join(lowered: list[str]) -> list[int]:
    """Indexes where a two-word compound starts (``log in``, ``phone number``)."""
    starts = []
    i = 0
    while i + 1 < len(lowered):
        if (lowered[i], lowered[i + 1]) in terms.COMPOUNDS:
            starts.append(i)
            i += 2
        else:
            i += 1
    return starts


def parse(text: str) -> Parsed:
    found = list(TOKEN.finditer(text))
    raw = [m.group() for m in found]
    lowered = [t.lower().replace("\u2019", "'") for t in raw]
    initial = []
    for index, match in enumerate(found):
        before = text[: match.start()].rstrip()
        after_title = index > 0 and lowered[index - 1] in TITLES
        initial.append(not after_title and (not before or before[-1] in SENTENCE_ENDS))
    words: list[Word] = []
    numbers: list[str] = []
    compounds = set(_join([w.replace("-", "") for w in lowered]))
    skip = False
    for index, (token, word) in enumerate(zip(raw, lowered, strict=True)):
        if skip:
            skip = False
            continue
        if token[0].isdigit():
            numbers.append(token.replace(",", ""))
            continue
        if word in NUMBER_WORDS:
            numbers.append(NUMBER_WORDS[word])
            continue
        if word.endswith("n't") or word in terms.NEGATIONS:
            continue  # negations are counted on the whole text, by semantic.rejects
        joined = word.replace("-", "")
        if index in compounds:
            joined = terms.COMPOUNDS[(joined, lowered[index + 1].replace("-", ""))]
            skip = True
        joined = joined.removesuffix("'s").removesuffix("'")
        if "'" in joined or joined in terms.FUNCTION_WORDS:
            continue
        name = (
            (token[0].isupper() and not initial[index] and word not in NOT_NAMES)
            or (len(token) > 1 and token.isupper() and word not in NOT_NAMES)
            or any(c.isdigit() for c in token)
        )
        counted = any(
            0 <= j < len(raw) and (raw[j][0].isdigit() or lowered[j] in NUMBER_WORDS)
            for j in (index - 1, index + 1)
        ) or (index > 0 and lowered[index - 1] in COUNTING)
        words.append(Word(stem(joined), name, joined, counted))
    return Parsed(tuple(words), tuple(numbers))


def _senses(groups: Iterable[list[set[str]]], kind: str) -> dict[str, list[tuple[str, int, int]]]:
    found: dict[str, list[tuple[str, int, int]]] = {}
    for g, group in enumerate(groups):
        for s, sense in enumerate(group):
            for word in sense:
                found.setdefault(stem(word.replace("-", "")), []).append((kind, g, s))
    return found


@lru_cache(maxsize=1)
def _learned() -> frozenset[tuple[str, str]]:
    if not LEARNED.exists():
        return frozenset()
    data = json.loads(LEARNED.read_text())
    return frozenset((a, b) for a, b, *_ in data["pairs"])


class Guard:
    """Judges pairs of questions; built once (:func:`guard`), then used for every lookup."""

    def __init__(
        self,
        learned: Iterable[tuple[str, str]] = (),
        vocabulary: frozenset[str] | None = None,
    ) -> None:
        self.vocabulary = vocabulary
        self.senses: dict[str, list[tuple[str, int, int]]] = {}
        for groups, kind in (
            (terms.ANTONYMS, "antonym"),
            (terms.SIBLINGS, "sibling"),
            (terms.UNITS, "unit"),
            (terms.DATES, "date"),
        ):
            for word, where in _senses(groups, kind).items():
                self.senses.setdefault(word, []).extend(where)
        self.paraphrases: set[tuple[str, str]] = set()
        for group in terms.PARAPHRASES:
            stems = sorted({stem(w) for w in group})
            self.paraphrases.update((a, b) for a in stems for b in stems if a < b)
        for a, b in learned:
            self.paraphrases.add((min(a, b), max(a, b)))

    def same(self, a: str, b: str) -> bool:
        """Whether two stems say the same thing."""
        if a == b or (min(a, b), max(a, b)) in self.paraphrases:
            return True
        short, long = sorted((a, b), key=len)
        if len(short) >= 4 and long.startswith(short) and not _negates(short, long):
            return True
        return any(
            k1 == k2 and g1 == g2 and s1 == s2
            for k1, g1, s1 in self.senses.get(a, ())
            for k2, g2, s2 in self.senses.get(b, ())
        )

    def refusal(self, first: str, second: str) -> str | None:
        """Why ``second`` must not be answered with ``first``'s answer, or None."""
        a, b = parse(first), parse(second)
        if Counter(a.numbers) != Counter(b.numbers):
            return "number"
        left, right = _leftovers(a.content, b.content)
        left, right = self._cancel(left, right)
        # A name counts only against a name: one name in place of another ("Paris" for
        # "Lyon"). A name on one side alone is more often a writer's capital letter (Quora's
        # "What is the Best way...") or a detail the answer does not turn on.
        named = any(map(self._named, left)) and any(map(self._named, right))
        for word in (*left, *right):
            kinds = self._kinds(word.stem)
            if "unit" in kinds and word.counted:
                return "unit"
            if "date" in kinds:
                return "date"
            if named and self._named(word):
                return "name"
            if word.stem in {"non", "un"}:
                return "negation"
        for x in left:
            for y in right:
                if _negates(x.stem, y.stem) or _negates(y.stem, x.stem):
                    return "negation"
                if "unit" in self._kinds(x.stem) and "unit" in self._kinds(y.stem):
                    return "unit"
                why = self._contrast(x.stem, y.stem)
                if why:
                    return why
        if _swapped(a, b) or (not left and not right and _pivoted(a, b, first, second)):
            return "role"
        return None

    def _kinds(self, stem: str) -> set[str]:
        return {k for k, _, _ in self.senses.get(stem, ())}

    def _named(self, word: Word) -> bool:
        return word.name or self._unknown(word)

    def _unknown(self, word: Word) -> bool:
        vocabulary = self.vocabulary
        return vocabulary is not None and word.lowered.isalpha() and word.lowered not in vocabulary

    def _contrast(self, x: str, y: str) -> str | None:
        for k1, g1, s1 in self.senses.get(x, ()):
            for k2, g2, s2 in self.senses.get(y, ()):
                if k1 == k2 and g1 == g2 and s1 != s2:
                    return k1
        return None

    def _cancel(self, left: list[Word], right: list[Word]) -> tuple[list[Word], list[Word]]:
        """Drop the left-over words that a word on the other side paraphrases, and a word
        that two adjacent words on the other side spell."""
        left, right = list(left), list(right)
        for side, other in ((left, right), (right, left)):
            stems = [w.stem for w in other]
            joined = {stems[i] + stems[i + 1]: i for i in range(len(stems) - 1)}
            for word in list(side):
                if word.stem in joined and word in side:
                    i = joined[word.stem]
                    side.remove(word)
                    del other[i : i + 2]
                    stems = [w.stem for w in other]
                    joined = {stems[i] + stems[i + 1]: i for i in range(len(stems) - 1)}
        for x in list(left):
            for y in right:
                if self.same(x.stem, y.stem):
                    left.remove(x)
                    right.remove(y)
                    break
        return left, right


def _negates(plain: str, other: str) -> bool:
    return any(other == prefix + plain for prefix in terms.NEGATING_PREFIXES)


def _leftovers(a: list[Word], b: list[Word]) -> tuple[list[Word], list[Word]]:
    """The content words of each side that the other does not hold (a multiset difference
    on stems, so that a reordering aligns)."""
    extra_a = Counter(w.stem for w in a) - Counter(w.stem for w in b)
    extra_b = Counter(w.stem for w in b) - Counter(w.stem for w in a)

    def pick(words: list[Word], extra: Counter[str]) -> list[Word]:
        chosen = []
        for word in words:
            if extra[word.stem] > 0:
                extra[word.stem] -= 1
                chosen.append(word)
        return chosen

    return pick(a, extra_a), pick(b, extra_b)


def _sides(parsed: Parsed, marker: str) -> tuple[set[str], set[str]] | None:
    stems = [w.stem for w in parsed.words]
    if marker not in stems:
        return None
    at = stems.index(marker)
    before = {s for s in stems[:at] if s not in terms.ROLE_MARKERS}
    after = {s for s in stems[at + 1 :] if s not in terms.ROLE_MARKERS}
    return before, after


def _segment(parsed: Parsed, marker: str) -> frozenset[str] | None:
    """The content words after ``marker``, up to the next role word."""
    stems = [w.stem for w in parsed.words]
    if marker not in stems:
        return None
    found = []
    for word in stems[stems.index(marker) + 1 :]:
        if word in terms.ROLE_MARKERS:
            break
        found.append(word)
    return frozenset(found)


def _swapped(a: Parsed, b: Parsed) -> bool:
    """The same content on the other sides of a role word: one word crosses it each way, or
    ``from X to Y`` against ``from Y to X``. Numbers count as content here."""
    if Counter(a.numbers) == Counter(b.numbers) and a.numbers != b.numbers:
        return True
    for marker in terms.ROLE_MARKERS:
        sides_a, sides_b = _sides(a, marker), _sides(b, marker)
        if sides_a is None or sides_b is None:
            continue
        (before_a, after_a), (before_b, after_b) = sides_a, sides_b
        forward = (before_a - after_a) & (after_b - before_b)
        backward = (after_a - before_a) & (before_b - after_b)
        if forward and backward:
            return True
    source_a, target_a = _segment(a, "from"), _segment(a, "to")
    source_b, target_b = _segment(b, "from"), _segment(b, "to")
    if None not in (source_a, target_a, source_b, target_b) and source_a != source_b:
        return source_a == target_b and target_a == source_b
    return False


def _pivoted(a: Parsed, b: Parsed, first: str, second: str) -> bool:
    """Subject and object swapped around the same word ("the tenant pays the landlord"
    against "the landlord pays the tenant"): three content words that follow each other
    as x m y on one side and y m x on the other. Judged only when the two hold the same
    content words (a small edit, not a rewording); not in the passive ("paid by"), which
    swaps them and keeps the meaning; and not beside a pronoun, which may stand for a word
    that moved ("reset my password if I forgot it" against "if I forgot my password, reset
    it"). A clause moved whole ("after X, can I Y?") keeps each clause's own order and never
    matches."""
    words = {w for text in (first, second) for w in PLAIN_WORD.findall(text.lower())}
    if words & MOVED:
        return False
    left, right = [w.stem for w in a.content], [w.stem for w in b.content]
    once = {s for s, n in Counter(left).items() if n == 1} & {
        s for s, n in Counter(right).items() if n == 1
    }
    where = {s: right.index(s) for s in once}
    for i in range(len(left) - 2):
        x, m, y = left[i : i + 3]
        if {x, m, y} <= once and where[y] + 1 == where[m] == where[x] - 1:
            return True
    return False


@lru_cache(maxsize=1)
def guard() -> Guard:
    """The guard with the shipped learned paraphrases."""
    return Guard(_learned())


def refusal(first: str, second: str) -> str | None:
    return guard().refusal(first, second)
