"""The hand-written evaluation sets of the semantic cache (``benchmarks/data/``) are whole:
at least 200 pairs each, every edit family and paraphrase kind represented, no pair twice."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[2] / "benchmarks" / "data"
FAMILIES = {
    "antonym",
    "sibling",
    "number",
    "date",
    "amount",
    "unit",
    "name",
    "product",
    "place",
    "negation",
    "role",
}
KINDS = {"reorder", "synonym", "contraction", "function_words", "rewording"}


def rows(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (DATA / name).read_text().splitlines() if line]


def test_the_contrast_set_covers_every_edit_family() -> None:
    found = rows("cache_contrast.jsonl")
    assert len(found) >= 200
    assert {r["family"] for r in found} == FAMILIES
    for family in FAMILIES:
        assert sum(r["family"] == family for r in found) >= 15, family
    assert len({(r["a"], r["b"]) for r in found}) == len(found)
    assert all(r["a"] != r["b"] for r in found)


def test_the_paraphrase_set_covers_every_kind() -> None:
    found = rows("cache_paraphrases.jsonl")
    assert len(found) >= 200
    assert {r["kind"] for r in found} == KINDS
    for kind in KINDS:
        assert sum(r["kind"] == kind for r in found) >= 30, kind
    assert len({(r["a"], r["b"]) for r in found}) == len(found)
    assert len({r["id"] for r in found}) == len(found)
    assert all(r["a"] != r["b"] for r in found)
