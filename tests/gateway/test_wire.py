from typing import Any

import pytest

from stackyard.errors import APIError
from stackyard.gateway.wire import validate_chat, validate_embeddings

USER = [{"role": "user", "content": "hi"}]


def chat_error(**body: Any) -> APIError:
    with pytest.raises(APIError) as info:
        validate_chat({"model": "m", "messages": USER, **body})
    assert info.value.status == 400
    return info.value


def test_valid_request_with_unknown_fields_passes() -> None:
    parsed = validate_chat(
        {
            "model": "m",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": [{"type": "text", "text": "hi"}]},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{}"},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "c1", "content": "42"},
            ],
            "temperature": 1,
            "stop": ["\n"],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
            "tool_choice": {"type": "function", "function": {"name": "f"}},
            "response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": {}}},
            "stream": True,
            "stream_options": {"include_usage": True},
            "reasoning_effort": "low",
            "metadata": {"team": "x"},
        }
    )
    assert parsed.model_extra == {"reasoning_effort": "low", "metadata": {"team": "x"}}


@pytest.mark.parametrize(
    ("body", "param", "fragment"),
    [
        ({"messages": None}, "messages", "expected an array, but got null"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content", "a string or"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role", "'user'"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0]", "tool_call_id"),
        ({"messages": []}, "messages", "at least 1 item"),
        ({"temperature": "hot"}, "temperature", "expected a number, but got a string"),
        ({"temperature": 2.5}, "temperature", "less than or equal to 2"),
        ({"max_tokens": 0}, "max_tokens", "greater than or equal to 1"),
        ({"n": True}, "n", "expected an integer, but got a boolean"),
        ({"stream": "yes"}, "stream", "expected a boolean"),
        ({"stream_options": {"include_usage": True}}, "stream_options", "'stream' is true"),
        ({"tools": [{"type": "function"}]}, "tools[0]", "needs 'function'"),
        (
            {"tools": [{"type": "function", "function": {"name": "f", "parameters": 1}}]},
            "tools[0].function.parameters",
            "expected an object",
        ),
        ({"response_format": {"type": "json_schema"}}, "response_format", "'json_schema'"),
        ({"model": 3}, "model", "expected a string, but got a number"),
    ],
)
def test_bad_fields_are_named(body: dict[str, Any], param: str, fragment: str) -> None:
    error = chat_error(**body)
    assert error.param == param
    assert fragment in error.message
    assert error.type == "invalid_request_error"


def test_missing_model() -> None:
    with pytest.raises(APIError) as info:
        validate_chat({"messages": USER})
    assert info.value.param == "model"
    assert info.value.message == "Missing required parameter: 'model'."


@pytest.mark.parametrize("value", ["text", ["a", "b"], [1, 2, 3], [[1, 2], [3]]])
def test_embedding_inputs_accepted(value: object) -> None:
    validate_embeddings({"model": "m", "input": value})


@pytest.mark.parametrize("value", ["", [], [1, "a"], [[]], None, 5, [True]])
def test_embedding_inputs_rejected(value: object) -> None:
    with pytest.raises(APIError) as info:
        validate_embeddings({"model": "m", "input": value})
    assert info.value.param == "input"


def test_embedding_encoding_format() -> None:
    with pytest.raises(APIError) as info:
        validate_embeddings({"model": "m", "input": "x", "encoding_format": "hex"})
    assert info.value.param == "encoding_format"
