"""Scorers that call a model through the gateway: embedding similarity and LLM-as-judge."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from stackyard.evals.dataset import Item
from stackyard.evals.scorers.base import Judge, Score, expected_text


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


@dataclass
class EmbeddingSimilarity:
    """Cosine similarity of the output and the expected text (the in-process MiniLM by
    default), as the score."""

    model: str = "all-minilm-l6-v2"
    name: str = "embedding_similarity"
    threshold: float | None = None

    async def score(self, output: str, item: Item, judge: Judge) -> Score:
        got, wanted = await judge.embed(self.model, [output, expected_text(item)])
        return Score(max(0.0, cosine(got, wanted)))


JUDGE_PROMPT = """You grade an answer against a rubric.

Rubric: {rubric}

Question or input: {input}
Reference answer (may be empty): {expected}
Answer to grade: {output}

Reply with a grade from 1 (fails the rubric) to 5 (fully meets it) on the first line as
"GRADE: <n>", then one sentence of reasoning."""


@dataclass
class LLMJudge:
    """A model grades each output from 1 to 5 against a rubric; the score is (grade-1)/4."""

    model: str = ""
    rubric: str = "The answer is correct, relevant and concise."
    name: str = "llm_judge"
    threshold: float | None = None

    async def score(self, output: str, item: Item, judge: Judge) -> Score:
        prompt = JUDGE_PROMPT.format(
            rubric=self.rubric,
            input=item.input,
            expected=item.expected if item.expected is not None else "",
            output=output,
        )
        reply = await judge.chat(self.model, [{"role": "user", "content": prompt}])
        match = re.search(r"GRADE:\s*([1-5])", reply) or re.search(r"\b([1-5])\b", reply)
        if match is None:
            return Score(0.0, f"the judge gave no grade: {reply[:100]!r}")
        return Score((int(match[1]) - 1) / 4, reply.strip()[:200])
