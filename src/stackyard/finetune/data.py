"""Training examples from JSONL lines, in any of three formats, as conversations:

- chat: ``{"messages": [{"role", "content", "weight"?}, ...]}`` (OpenAI's fine-tuning format;
  ``weight: 0`` on an assistant message keeps it out of the loss);
- prompt/completion: ``{"prompt", "completion"}``;
- Alpaca: ``{"instruction", "input"?, "output"}``.

Problems are reported per line (``DataError.line``); nothing is silently dropped or cut.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import orjson

ROLES = frozenset({"system", "user", "assistant"})


class DataError(ValueError):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.reason = message


@dataclass(frozen=True, slots=True)
class Turn:
    role: str
    content: str
    weight: float = 1.0  # assistant turns: 1 trains on it, 0 does not


@dataclass(frozen=True, slots=True)
class Example:
    turns: tuple[Turn, ...]
    line: int = 0
    #: For evaluation: the reference answer (the last assistant turn).
    metadata: dict[str, object] = field(default_factory=dict)

    @property
    def prompt_turns(self) -> tuple[Turn, ...]:
        """Everything before the last assistant turn (what the model is asked)."""
        last = max(i for i, t in enumerate(self.turns) if t.role == "assistant")
        return self.turns[:last]

    @property
    def answer(self) -> str:
        return next(t.content for t in reversed(self.turns) if t.role == "assistant")

    def key(self) -> bytes:
        return orjson.dumps([(t.role, t.content) for t in self.turns])


def parse(record: object, line: int) -> Example:
    if not isinstance(record, dict):
        raise DataError(line, "expected a JSON object")
    if "messages" in record:
        return Example(_chat(record["messages"], line), line)
    if "prompt" in record or "completion" in record:
        prompt, completion = record.get("prompt"), record.get("completion")
        if not isinstance(prompt, str) or not isinstance(completion, str):
            raise DataError(line, "'prompt' and 'completion' must both be strings")
        return Example(_checked([Turn("user", prompt), Turn("assistant", completion)], line), line)
    if "instruction" in record or "output" in record:
        instruction, given, output = (record.get(k) for k in ("instruction", "input", "output"))
        if not isinstance(instruction, str) or not isinstance(output, str):
            raise DataError(line, "'instruction' and 'output' must both be strings")
        if given is not None and not isinstance(given, str):
            raise DataError(line, "'input' must be a string")
        prompt = f"{instruction}\n\n{given}" if given and given.strip() else instruction
        return Example(_checked([Turn("user", prompt), Turn("assistant", output)], line), line)
    raise DataError(
        line,
        "unknown format: expected 'messages' (chat), 'prompt' and 'completion', or "
        "'instruction' and 'output' (Alpaca)",
    )


def _chat(messages: object, line: int) -> tuple[Turn, ...]:
    if not isinstance(messages, list) or not messages:
        raise DataError(line, "'messages' must be a non-empty list")
    turns = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise DataError(line, f"messages[{i}] must be an object")
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise DataError(line, f"messages[{i}].role must be system, user or assistant")
        if not isinstance(content, str):
            raise DataError(line, f"messages[{i}].content must be a string")
        weight = message.get("weight", 1)
        if weight not in (0, 1) or isinstance(weight, bool):
            raise DataError(line, f"messages[{i}].weight must be 0 or 1")
        if role != "assistant" and "weight" in message:
            raise DataError(line, f"messages[{i}]: only assistant messages have a weight")
        turns.append(Turn(role, content, float(weight)))
    return _checked(turns, line)


def _checked(turns: list[Turn], line: int) -> tuple[Turn, ...]:
    for i, turn in enumerate(turns):
        if not turn.content.strip():
            raise DataError(line, f"turn {i + 1} ({turn.role}) is empty")
        if turn.role == "system" and i > 0:
            raise DataError(line, "a system message may only come first")
    if not any(t.role == "assistant" and t.weight for t in turns):
        raise DataError(line, "no assistant message to learn from")
    return tuple(turns)


def read_jsonl(lines: Iterable[str | bytes]) -> Iterator[Example | DataError]:
    """Examples, or the error of each bad line (blank lines are skipped)."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            yield DataError(number, f"not JSON ({exc})")
            continue
        try:
            yield parse(record, number)
        except DataError as exc:
            yield exc
