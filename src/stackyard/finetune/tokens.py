"""Examples as token ids and labels, through the base model's own chat template.

Each trained assistant turn's tokens (its text and the end-of-turn marker) keep their ids as
labels; everything else is ``IGNORE``: system and user turns, the template's headers, and
assistant turns of weight 0. Every assistant turn is trained, not only the last. The spans are
found by rendering the conversation's prefixes, so any template whose renderings extend each
other works; one that does not is refused rather than masked wrongly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stackyard.finetune.data import DataError, Example

IGNORE = -100


class TemplateError(ValueError):
    """The chat template does not render a conversation's prefixes as prefixes."""


@dataclass(frozen=True, slots=True)
class Tokenized:
    input_ids: list[int]
    labels: list[int]
    line: int = 0

    @property
    def trained(self) -> int:
        return sum(label != IGNORE for label in self.labels)

    def __len__(self) -> int:
        return len(self.input_ids)


class ChatTokenizer:
    def __init__(self, tokenizer: Any, max_length: int) -> None:
        self.tokenizer = tokenizer
        self.max_length = max_length

    def _render(self, example: Example, upto: int, generation_prompt: bool) -> list[int]:
        messages = [{"role": t.role, "content": t.content} for t in example.turns[:upto]]
        text = self.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=generation_prompt
        )
        ids: list[int] = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return ids

    def encode(self, example: Example) -> Tokenized:
        """Ids and labels; a DataError when the conversation is longer than ``max_length``
        (it is never cut)."""
        full = self._render(example, len(example.turns), False)
        if len(full) > self.max_length:
            raise DataError(
                example.line,
                f"{len(full)} tokens, more than the {self.max_length} allowed (not truncated: "
                "shorten it or raise the maximum sequence length)",
            )
        labels = [IGNORE] * len(full)
        for i, turn in enumerate(example.turns):
            if turn.role != "assistant" or not turn.weight:
                continue
            start = len(self._render(example, i, True))
            through = self._render(example, i + 1, False)
            if full[: len(through)] != through or start > len(through):
                raise TemplateError(
                    "the chat template does not render a conversation's beginning as the "
                    "beginning of the whole; its assistant turns cannot be found"
                )
            labels[start : len(through)] = full[start : len(through)]
        return Tokenized(full, labels, example.line)
