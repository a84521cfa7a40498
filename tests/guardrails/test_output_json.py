"""Output validation: what counts as the JSON asked for, and the local repairs."""

from __future__ import annotations

from typing import Any

import pytest

from stackyard.guardrails.output_json import Expected, expected, problem, reask_messages, repair

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "people": {"type": "integer"}},
    "required": ["city", "people"],
    "additionalProperties": False,
}
CITY = Expected(SCHEMA, "city")


def test_what_a_request_asks_for() -> None:
    assert expected({}) is None
    assert expected({"response_format": {"type": "text"}}) is None
    assert expected({"response_format": {"type": "json_object"}}) == Expected()
    asked = {
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "city", "schema": SCHEMA},
        }
    }
    assert expected(asked) == CITY


def test_problems_are_named_with_where_they_are() -> None:
    assert problem('{"a": 1}', Expected()) is None
    assert "not valid JSON" in (problem("{'a': 1}", Expected()) or "")
    assert problem("[1, 2]", Expected()) == "the answer is JSON but not an object"
    assert problem('{"city": "Paris", "people": 2100000}', CITY) is None
    wrong = problem('{"city": "Paris", "people": "many"}', CITY) or ""
    assert wrong.startswith("the answer does not match the schema at people:")
    assert "'many' is not of type 'integer'" in wrong
    assert "(the root)" in (problem('{"city": "Paris"}', CITY) or "")


@pytest.mark.parametrize(
    ("answer", "fixed"),
    [
        ('```json\n{"city": "Paris", "people": 2}\n```', '{"city": "Paris", "people": 2}'),
        (
            'Sure! Here it is: {"city": "Paris", "people": 2} Hope it helps.',
            '{"city": "Paris", "people": 2}',
        ),
        ('{"city": "Paris", "people": 2,}', '{"city": "Paris", "people": 2}'),
    ],
)
def test_cheap_repairs(answer: str, fixed: str) -> None:
    assert repair(answer, CITY) == fixed


def test_python_literals_become_json() -> None:
    assert repair('{"ok": True, "none": None,}', Expected()) == '{"ok": true, "none": null}'


def test_nothing_is_invented() -> None:
    assert repair('{"city": "Paris"', CITY) is None  # cut short: no closing brace to find
    assert repair('{"city": "Paris", "people": "many"}', CITY) is None  # a wrong value stays wrong
    assert repair("no JSON at all", Expected()) is None


def test_the_reask_shows_the_model_its_answer_and_the_problem() -> None:
    messages = reask_messages(
        [{"role": "user", "content": "q"}], "bad", "the answer is not valid JSON"
    )
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[1]["content"] == "bad"
    assert "the answer is not valid JSON" in messages[2]["content"]
