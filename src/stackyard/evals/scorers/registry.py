"""Scorers by name: a new scorer is one module and one line here."""

from __future__ import annotations

from typing import Any

from stackyard.evals.scorers.base import Scorer
from stackyard.evals.scorers.model_based import EmbeddingSimilarity, LLMJudge
from stackyard.evals.scorers.structured import JsonSchema, JsonValid, Numeric
from stackyard.evals.scorers.text import Contains, ExactMatch, Regex, TokenF1

SCORERS: dict[str, type[Any]] = {
    "exact_match": ExactMatch,
    "f1": TokenF1,
    "contains": Contains,
    "regex": Regex,
    "json_valid": JsonValid,
    "json_schema": JsonSchema,
    "numeric": Numeric,
    "embedding_similarity": EmbeddingSimilarity,
    "llm_judge": LLMJudge,
}


def build(spec: dict[str, Any]) -> Scorer:
    """A scorer from its config: ``{"type": "contains", "threshold": 0.8, ...}``."""
    options = dict(spec)
    kind = options.pop("type", None)
    if kind not in SCORERS:
        raise ValueError(f"unknown scorer '{kind}' (known: {', '.join(SCORERS)})")
    try:
        scorer: Scorer = SCORERS[kind](**options)
    except TypeError as exc:
        raise ValueError(f"scorer '{kind}': {exc}") from None
    return scorer
