"""Per-request sampling: greedy at temperature 0, else temperature and nucleus (top-p), with a
generator per sequence so that a ``seed`` makes the output repeatable."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


@dataclass
class SamplingParams:
    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    #: Decode past the end-of-sequence token (benchmarks use it for fixed-length outputs).
    ignore_eos: bool = False
    #: Return each token's log probability and this many alternatives (0 to 20); None: none.
    logprobs: int | None = None

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0


def sample(
    logits: torch.Tensor, params: list[SamplingParams], generators: list[torch.Generator | None]
) -> list[int]:
    """One token per row of ``logits`` ([batch, vocab])."""
    import torch

    choices = torch.argmax(logits, dim=-1).tolist()
    for row, p in enumerate(params):
        if p.greedy:
            continue
        scores = logits[row].float() / p.temperature
        probs = torch.softmax(scores, dim=-1)
        if p.top_p < 1.0:
            sorted_probs, order = torch.sort(probs, descending=True)
            cumulative = torch.cumsum(sorted_probs, dim=-1)
            cut = cumulative - sorted_probs > p.top_p
            sorted_probs[cut] = 0.0
            probs = torch.zeros_like(probs).scatter_(0, order, sorted_probs)
        choices[row] = int(torch.multinomial(probs, 1, generator=generators[row]).item())
    return choices


@dataclass
class TokenLogprob:
    """A sampled token's log probability, and the most likely tokens' at its step."""

    token: int
    logprob: float
    top: list[tuple[int, float]]


def logprobs(
    logits: torch.Tensor, params: list[SamplingParams], tokens: list[int]
) -> list[TokenLogprob | None]:
    """Per row, the sampled token's log probability under the distribution it was sampled
    from: the log-softmax of its (masked) logits after temperature (greedy rows: at 1), before
    top-p. Tokens a grammar forbids are never among the alternatives."""
    import torch

    out: list[TokenLogprob | None] = [None] * len(tokens)
    for row, p in enumerate(params):
        if p.logprobs is None:
            continue
        scores = logits[row].float()
        if not p.greedy:
            scores = scores / p.temperature
        logp = torch.log_softmax(scores, dim=-1)
        top: list[tuple[int, float]] = []
        if p.logprobs:
            values, ids = torch.topk(logp, p.logprobs)
            top = [
                (int(i), float(v))
                for i, v in zip(ids.tolist(), values.tolist(), strict=True)
                if v != float("-inf")
            ]
        out[row] = TokenLogprob(tokens[row], float(logp[tokens[row]]), top)
    return out


class TextTail:
    """Incremental detokenisation with stop strings.

    Decodes the whole output each time (outputs are short) so that multi-byte characters split
    across tokens come out whole, and holds back the tail that could still become a stop
    string, so a stream never shows part of one.
    """

    def __init__(self, stop: list[str]) -> None:
        self.stop = [s for s in stop if s]
        self.hold = max((len(s) for s in self.stop), default=1) - 1
        self.sent = 0
        self.text = ""

    def update(self, text: str) -> tuple[str, bool]:
        """The new text to emit, and whether a stop string ended the output."""
        for stop in self.stop:
            at = text.find(stop)
            if at >= 0:
                self.text = text[:at]
                delta = self.text[self.sent :]
                self.sent = len(self.text)
                return delta, True
        self.text = text
        ready = len(text) - self.hold if self.hold else len(text)
        if text.endswith("\ufffd"):  # an incomplete multi-byte character
            ready = min(ready, len(text) - 1)
        if ready <= self.sent:
            return "", False
        delta = text[self.sent : ready]
        self.sent = ready
        return delta, False

    def flush(self) -> str:
        delta = self.text[self.sent :].rstrip("\ufffd")
        self.sent = len(self.text)
        return delta
