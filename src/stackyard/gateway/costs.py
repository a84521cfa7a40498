"""What a request costs: a price table per model, overridable per deployment in the config.

Prices are USD per million tokens (input, output, cached input), from the providers' public
price lists; a dated snapshot (``gpt-4o-mini-2024-07-18``) takes its family's price. In-process
models cost nothing unless the config gives them a price: per token, or per second of the
request's time on the deployment (``cost_per_second``: GPU or CPU time, as hosted inference is
billed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stackyard.config.schema import ModelEntry


@dataclass(frozen=True, slots=True)
class Price:
    input: float = 0.0
    output: float = 0.0
    cached_input: float = 0.0
    per_second: float = 0.0
    #: The longest a request is charged for at admission (the deployment's attempt timeout).
    most_seconds: float = 0.0

    def cost(self, usage: dict[str, Any] | None, seconds: float = 0.0) -> float:
        timed = self.per_second * seconds
        if not usage:
            return timed
        prompt = int(usage.get("prompt_tokens") or 0)
        completion = int(usage.get("completion_tokens") or 0)
        details = usage.get("prompt_tokens_details") or {}
        cached = int(details.get("cached_tokens") or 0) if isinstance(details, dict) else 0
        fresh = max(0, prompt - cached)
        tokens = fresh * self.input + cached * self.cached_input + completion * self.output
        return tokens / 1e6 + timed

    def most(self, prompt_tokens: int, max_tokens: int) -> float:
        """The most a request can cost: every prompt token fresh, every output token used,
        and, when priced by time, the longest an attempt may take."""
        tokens = prompt_tokens * self.input + max_tokens * self.output
        return tokens / 1e6 + self.per_second * self.most_seconds


PRICES: dict[str, Price] = {
    "gpt-5": Price(1.25, 10.0, 0.125),
    "gpt-5-mini": Price(0.25, 2.0, 0.025),
    "gpt-5-nano": Price(0.05, 0.40, 0.005),
    "gpt-4.1": Price(2.0, 8.0, 0.50),
    "gpt-4.1-mini": Price(0.40, 1.60, 0.10),
    "gpt-4.1-nano": Price(0.10, 0.40, 0.025),
    "gpt-4o": Price(2.50, 10.0, 1.25),
    "gpt-4o-mini": Price(0.15, 0.60, 0.075),
    "o3": Price(2.0, 8.0, 0.50),
    "o3-mini": Price(1.10, 4.40, 0.55),
    "o4-mini": Price(1.10, 4.40, 0.275),
    "text-embedding-3-small": Price(0.02),
    "text-embedding-3-large": Price(0.13),
    "claude-opus-4-1": Price(15.0, 75.0, 1.50),
    "claude-sonnet-4-5": Price(3.0, 15.0, 0.30),
    "claude-sonnet-4": Price(3.0, 15.0, 0.30),
    "claude-haiku-4-5": Price(1.0, 5.0, 0.10),
    "claude-3-5-haiku": Price(0.80, 4.0, 0.08),
}


def price_for(entry: ModelEntry, attempt_timeout: float = 120.0) -> Price:
    """The config's prices where given, else the table's for the provider's model id."""
    listed = PRICES.get(entry.upstream_model)
    if listed is None:
        family = max(
            (name for name in PRICES if entry.upstream_model.startswith(name + "-")),
            key=len,
            default=None,
        )
        listed = PRICES[family] if family else Price()
    if entry.provider == "local" and entry.upstream_model not in PRICES:
        listed = Price()
    return Price(
        entry.input_cost_per_mtok if entry.input_cost_per_mtok is not None else listed.input,
        entry.output_cost_per_mtok if entry.output_cost_per_mtok is not None else listed.output,
        entry.cached_input_cost_per_mtok
        if entry.cached_input_cost_per_mtok is not None
        else listed.cached_input,
        entry.cost_per_second or 0.0,
        (entry.timeout or attempt_timeout) if entry.cost_per_second else 0.0,
    )
