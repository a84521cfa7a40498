"""Loss masking on the token level, through SmolLM2's own chat template."""

from __future__ import annotations

from typing import Any

import pytest

from stackyard.finetune.data import DataError, parse
from stackyard.finetune.dataset import prepare, split
from stackyard.finetune.tokens import IGNORE, ChatTokenizer
from tests.conftest import require_local_models


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    require_local_models()
    from stackyard.finetune.train import load_tokenizer

    return load_tokenizer("smollm2")


def trained_spans(tokenizer: Any, ids: list[int], labels: list[int]) -> list[str]:
    spans: list[str] = []
    current: list[int] = []
    for token, label in zip(ids, labels, strict=True):
        if label == IGNORE:
            if current:
                spans.append(tokenizer.decode(current))
                current = []
        else:
            assert label == token
            current.append(token)
    if current:
        spans.append(tokenizer.decode(current))
    return spans


def test_only_assistant_turns_are_trained_every_one_of_them(tokenizer: Any) -> None:
    example = parse(
        {
            "messages": [
                {"role": "system", "content": "You answer in one word."},
                {"role": "user", "content": "Colour of the sky?"},
                {"role": "assistant", "content": "Blue"},
                {"role": "user", "content": "And grass?"},
                {"role": "assistant", "content": "Green", "weight": 0},
                {"role": "user", "content": "And snow?"},
                {"role": "assistant", "content": "White"},
            ]
        },
        1,
    )
    encoded = ChatTokenizer(tokenizer, 512).encode(example)
    assert trained_spans(tokenizer, encoded.input_ids, encoded.labels) == [
        "Blue<|im_end|>\n",
        "White<|im_end|>\n",
    ]
    whole = tokenizer.apply_chat_template(
        [{"role": t.role, "content": t.content} for t in example.turns], tokenize=False
    )
    assert encoded.input_ids == tokenizer(whole, add_special_tokens=False)["input_ids"]


def test_an_example_too_long_is_refused_not_cut(tokenizer: Any) -> None:
    example = parse({"prompt": "word " * 300, "completion": "ok"}, 9)
    with pytest.raises(DataError, match="more than the 64 allowed") as caught:
        ChatTokenizer(tokenizer, 64).encode(example)
    assert caught.value.line == 9


def test_a_dataset_report_and_split(tokenizer: Any) -> None:
    lines = [
        '{"prompt": "one", "completion": "1"}',
        '{"prompt": "two", "completion": "2"}',
        '{"prompt": "one", "completion": "1"}',
        '{"prompt": "three"}',
        '{"prompt": "' + "long " * 200 + '", "completion": "x"}',
        '{"instruction": "four", "output": "4"}',
    ]
    prepared = prepare(lines, ChatTokenizer(tokenizer, 128))
    report = prepared.report(epochs=2)
    assert report["examples"] == 3
    assert report["duplicates"] == [3]
    assert [e["line"] for e in report["errors"]] == [4, 5]
    assert report["billed_tokens"] == 2 * report["tokens"]
    assert 0 < report["trained_tokens"] < report["tokens"]
    train, held = split(prepared, 0.34, seed=1)
    assert (len(train.examples), len(held.examples)) == (2, 1)
    assert split(prepared, 0.34, seed=1)[1].examples == held.examples  # the same for a seed
