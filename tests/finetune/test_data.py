from __future__ import annotations

import pytest

from stackyard.finetune.data import DataError, Turn, parse, read_jsonl


def test_the_three_formats_become_conversations() -> None:
    chat = parse(
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello", "weight": 0},
                {"role": "user", "content": "Bye"},
                {"role": "assistant", "content": "Goodbye"},
            ]
        },
        1,
    )
    assert chat.turns[2] == Turn("assistant", "Hello", 0.0)
    assert chat.answer == "Goodbye"
    assert [t.role for t in chat.prompt_turns] == ["system", "user", "assistant", "user"]
    pc = parse({"prompt": "2+2?", "completion": "4"}, 2)
    assert pc.turns == (Turn("user", "2+2?"), Turn("assistant", "4"))
    alpaca = parse({"instruction": "Translate", "input": "chat", "output": "cat"}, 3)
    assert alpaca.turns[0].content == "Translate\n\nchat"
    bare = parse({"instruction": "Say hi", "input": "", "output": "hi"}, 4)
    assert bare.turns[0].content == "Say hi"


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (["a list"], "expected a JSON object"),
        ({"text": "x"}, "unknown format"),
        ({"messages": []}, "non-empty list"),
        ({"messages": [{"role": "bot", "content": "x"}]}, "role must be"),
        ({"messages": [{"role": "user", "content": 3}]}, "content must be a string"),
        (
            {
                "messages": [
                    {"role": "user", "content": "  "},
                    {"role": "assistant", "content": "a"},
                ]
            },
            r"turn 1 \(user\) is empty",
        ),
        ({"messages": [{"role": "user", "content": "q"}]}, "no assistant message"),
        (
            {
                "messages": [
                    {"role": "user", "content": "q"},
                    {"role": "assistant", "content": "a", "weight": 0},
                ]
            },
            "no assistant message",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": "q", "weight": 1},
                    {"role": "assistant", "content": "a"},
                ]
            },
            "only assistant messages",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": "q"},
                    {"role": "assistant", "content": "a", "weight": 0.5},
                ]
            },
            "weight must be 0 or 1",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": "q"},
                    {"role": "system", "content": "s"},
                    {"role": "assistant", "content": "a"},
                ]
            },
            "system message may only come first",
        ),
        ({"prompt": "q"}, "must both be strings"),
        ({"instruction": "q", "output": 1}, "must both be strings"),
    ],
)
def test_bad_records_say_what_is_wrong(record: object, message: str) -> None:
    with pytest.raises(DataError, match=message) as caught:
        parse(record, 7)
    assert caught.value.line == 7


def test_reading_reports_each_bad_line_and_skips_blank_ones() -> None:
    lines = ['{"prompt": "a", "completion": "b"}', "", "{not json", '{"prompt": "c"}']
    results = list(read_jsonl(lines))
    assert [type(r).__name__ for r in results] == ["Example", "DataError", "DataError"]
    assert [r.line for r in results] == [1, 3, 4]
