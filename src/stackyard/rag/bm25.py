"""An in-process BM25 index, updated as chunks come and go.

Text is analysed as Lucene's English analyser does (the reference BM25 numbers come from
Anserini, on Lucene): lower case, words and numbers, possessives and a short stop list
dropped, Porter stemming. ``k1`` and ``b`` default to Anserini's 0.9 and 0.4.
"""

from __future__ import annotations

import heapq
import math
import re
from collections import Counter
from functools import lru_cache

import snowballstemmer

WORD = re.compile(r"\w+(?:['\u2019]\w+)*")
STOP = frozenset(
    (
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "if",
        "in",
        "into",
        "is",
        "it",
        "no",
        "not",
        "of",
        "on",
        "or",
        "such",
        "that",
        "the",
        "their",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "will",
        "with",
    )
)
_stemmer = snowballstemmer.stemmer("porter")


@lru_cache(maxsize=200_000)
def _stem(word: str) -> str:
    return str(_stemmer.stemWord(word))


def analyse(text: str) -> list[str]:
    terms = []
    for word in WORD.findall(text.lower()):
        if word.endswith(("'s", "\u2019s")):
            word = word[:-2]  # possessives, as Lucene's EnglishPossessiveFilter
        word = word.replace("'", "").replace("\u2019", "").strip("_")
        if not word or word in STOP:
            continue
        stem = _stem(word)
        if stem:
            terms.append(stem)
    return terms


class BM25Index:
    def __init__(self, k1: float = 0.9, b: float = 0.4) -> None:
        self.k1 = k1
        self.b = b
        self.postings: dict[str, dict[int, int]] = {}
        self.lengths: dict[int, int] = {}
        self.terms: dict[int, tuple[str, ...]] = {}  # for removal
        self.total = 0

    def __len__(self) -> int:
        return len(self.lengths)

    def add(self, key: int, text: str) -> None:
        if key in self.lengths:
            self.remove(key)
        terms = Counter(analyse(text))
        length = sum(terms.values())
        self.lengths[key] = length
        self.terms[key] = tuple(terms)
        self.total += length
        for term, count in terms.items():
            self.postings.setdefault(term, {})[key] = count

    def remove(self, key: int) -> None:
        length = self.lengths.pop(key, None)
        if length is None:
            return
        self.total -= length
        for term in self.terms.pop(key):
            posting = self.postings[term]
            del posting[key]
            if not posting:
                del self.postings[term]

    def search(
        self, query: str, k: int, allowed: set[int] | None = None
    ) -> list[tuple[int, float]]:
        n = len(self.lengths)
        if not n:
            return []
        average = self.total / n
        scores: dict[int, float] = {}
        k1, b = self.k1, self.b
        for term in set(analyse(query)):
            posting = self.postings.get(term)
            if not posting:
                continue
            idf = math.log(1 + (n - len(posting) + 0.5) / (len(posting) + 0.5))
            for key, tf in posting.items():
                if allowed is not None and key not in allowed:
                    continue
                norm = k1 * (1 - b + b * self.lengths[key] / average)
                scores[key] = scores.get(key, 0.0) + idf * tf * (k1 + 1) / (tf + norm)
        return heapq.nlargest(k, scores.items(), key=lambda item: item[1])
