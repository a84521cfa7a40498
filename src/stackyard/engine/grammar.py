"""Constrained decoding: a grammar that a sequence's tokens must follow, with llguidance.

A :class:`Constraint` holds one sequence's matcher. Before sampling, :meth:`Constraint.mask`
sets every token the grammar does not allow next to minus infinity in that sequence's row of
logits; after sampling, :meth:`Constraint.accept` feeds it the token. A grammar that can go no
further ends the sequence. Grammars are llguidance's (Lark with ``%json`` schemas, or a JSON
schema compiled to one); :func:`json_schema` and :func:`lark` make them.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

#: How JSON is written under a schema: one space after ``,`` and ``:``, no other whitespace
#: (a small model left to choose whitespace can emit it for ever).
JSON_STYLE: dict[str, Any] = {
    "whitespace_flexible": False,
    "item_separator": ", ",
    "key_separator": ": ",
}


class GrammarError(ValueError):
    """A grammar (or the schema it came from) that cannot be compiled."""


def json_schema(schema: dict[str, Any], *, lenient: bool = False) -> str:
    """The grammar of JSON texts valid under ``schema``; ``lenient`` ignores keywords
    llguidance does not implement instead of refusing the schema."""
    import llguidance

    try:
        options: Any = {**JSON_STYLE, "lenient": lenient}
        return llguidance.LLMatcher.grammar_from_json_schema(schema, defaults=options)
    except ValueError as exc:
        raise GrammarError(str(exc)) from None


def json_fragment(schema: dict[str, Any]) -> str:
    """``schema`` as a Lark rule's body (``%json {...}``), in :data:`JSON_STYLE`."""
    return "%json " + json.dumps({**schema, "x-guidance": JSON_STYLE})


def lark(grammar: str) -> str:
    import llguidance

    return llguidance.LLMatcher.grammar_from_lark(grammar)


def tokenizer_for(tokenizer: Any, vocab_size: int) -> Any:
    """llguidance's view of a tokenizer: a Hugging Face fast tokenizer's own, else one made
    from ``tokens`` (each token's bytes) and ``eos_token_id``. Costs about a second; the
    engine makes it once."""
    import llguidance
    import llguidance.hf
    from transformers import PreTrainedTokenizerFast

    if isinstance(tokenizer, PreTrainedTokenizerFast):
        return llguidance.hf.from_tokenizer(tokenizer, n_vocab=vocab_size)
    return llguidance.LLTokenizer(llguidance.TokenizerWrapper(tokenizer), n_vocab=vocab_size)


class Constraint:
    """One sequence's grammar state."""

    def __init__(self, tokenizer: Any, grammar: str) -> None:
        import llguidance

        self.matcher = llguidance.LLMatcher(tokenizer, grammar, log_level=0)
        if self.matcher.is_error():
            raise GrammarError(self.matcher.get_error())

    def mask(self, logits: torch.Tensor) -> None:
        """Forbid, in this row of logits, every token the grammar does not allow next."""
        import torch

        allowed = torch.frombuffer(bytearray(self.matcher.compute_logit_bias()), dtype=torch.uint8)
        size = min(len(allowed), logits.shape[-1])
        logits[:size].masked_fill_(allowed[:size].to(logits.device) == 0, float("-inf"))
        logits[size:] = float("-inf")

    def accept(self, token: int) -> bool:
        """Feed the sampled token; True when the grammar is complete (nothing may follow)."""
        if not self.matcher.consume_token(token):
            raise GrammarError(self.matcher.get_error() or f"token {token} broke the grammar")
        return bool(self.matcher.is_stopped())
