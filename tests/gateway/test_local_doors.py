"""What the in-process engine gives each door, through the official OpenAI SDK (strict about
the responses' shape), in milliseconds: the whole server runs in this process on a tiny
random Llama whose tokenizer has one token per character of an alphabet JSON can be written
in (so grammars work), and which never ends its text by itself."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from tests.conftest import need_module

torch = need_module("torch", module=True)
transformers = need_module("transformers", module=True)
need_module("llguidance", module=True)

from stackyard.engine.scheduler import Engine  # noqa: E402
from stackyard.gateway.doors.completions import chunk, legacy_logprobs  # noqa: E402
from tests.gateway.tiny_local import serving as tiny_serving  # noqa: E402
from tests.gateway.tiny_local import tiny_config  # noqa: E402

EOS = 1
ALPHABET = b'{}[]":, _abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'


class Tokenizer:
    """Token 0 pads, 1 ends a sequence, every other one is a character of :data:`ALPHABET`
    (what llguidance reads of a tokenizer: ``tokens``, ``special_token_ids``); the chat
    template is the messages' characters, unknown ones read as spaces."""

    eos_token_id = EOS
    pad_token_id = 0
    bos_token_id = None
    special_token_ids = [0, EOS]
    tokens = [b"<pad>", b"<eos>"] + [bytes([c]) for c in ALPHABET]

    def __call__(self, text: str | bytes) -> list[int]:
        raw = text if isinstance(text, bytes) else text.encode()
        return [self.tokens.index(bytes([c])) for c in raw]

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return b"".join(self.tokens[t] for t in ids if t > EOS).decode()

    def apply_chat_template(self, messages: list[dict[str, Any]], **_: Any) -> list[int]:
        text = "".join(str(m["content"]) for m in messages).encode()
        space = self.tokens.index(b" ")
        return [ALPHABET.find(c) + 2 if c in ALPHABET else space for c in text][-48:]


class EndlessLlama(transformers.LlamaForCausalLM):  # type: ignore[misc,name-defined]
    """A tiny random Llama that never picks the end of sequence itself (a grammar still ends
    its output), so every free output is ``max_tokens`` long."""

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        out = super().forward(*args, **kwargs)
        out.logits[..., EOS] = -1e9
        return out


def tiny_engine() -> Engine:
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=len(Tokenizer.tokens),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        eos_token_id=EOS,
        pad_token_id=0,
    )
    model = EndlessLlama(config)
    model.eval()
    return Engine(model, Tokenizer(), max_batch=4, max_queue=4)


@pytest.fixture
def config(tmp_path: Path) -> dict[str, Any]:
    return tiny_config(tmp_path)


def serving(
    config: dict[str, Any], strict: bool = True
) -> contextlib.AbstractAsyncContextManager[tuple[openai.AsyncOpenAI, anthropic.AsyncAnthropic]]:
    return tiny_serving(config, tiny_engine, strict)


# -- log probabilities on the legacy completions door ------------------------------------------


def check_legacy_logprobs(logprobs: Any, text: str, top: int) -> None:
    """OpenAI's legacy shape: parallel lists, tokens that spell the text, offsets into it, and
    per token a dict of at most ``top`` + 1 alternatives that holds the sampled token."""
    assert logprobs is not None
    tokens = logprobs.tokens
    assert tokens
    assert "".join(tokens) == text
    n = len(tokens)
    assert len(logprobs.token_logprobs) == len(logprobs.top_logprobs) == n
    assert logprobs.text_offset == [len("".join(tokens[:i])) for i in range(n)]
    for token, logprob, alternatives in zip(
        tokens, logprobs.token_logprobs, logprobs.top_logprobs, strict=True
    ):
        assert logprob <= 0
        assert alternatives[token] == pytest.approx(logprob)
        assert 1 <= len(alternatives) <= top + 1
        assert max(alternatives.values()) == pytest.approx(logprob)  # greedy: the likeliest


async def test_completions_carry_legacy_logprobs_whole_and_streamed(
    config: dict[str, Any],
) -> None:
    asked: Any = {"model": "tiny", "prompt": "hello", "max_tokens": 9, "temperature": 0}
    async with serving(config) as (oa, _):
        whole = await oa.completions.create(**asked, logprobs=3)
        plain = await oa.completions.create(**asked)
    # The SDK's strict types refuse every legacy chunk before the last (its finish_reason is
    # null there, as OpenAI's is): the stream is read without them.
    async with serving(config, strict=False) as (oa, _):
        stream = await oa.completions.create(**asked, logprobs=0, stream=True)
        chunks = [c async for c in stream]
    [choice] = whole.choices
    assert len(choice.text) == 9
    logprobs = choice.logprobs
    assert logprobs is not None
    check_legacy_logprobs(logprobs, choice.text, 3)
    assert [len(a) for a in logprobs.top_logprobs or []] == [3] * 9  # greedy: one of the 3
    assert plain.choices[0].text == choice.text
    assert plain.choices[0].logprobs is None

    carrying = [c.choices[0].logprobs for c in chunks if c.choices and c.choices[0].logprobs]
    assert len(carrying) > 1  # each chunk carries its own tokens' log probabilities
    streamed_text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert streamed_text == choice.text
    assert [t for lp in carrying for t in lp.tokens or []] == logprobs.tokens
    assert [o for lp in carrying for o in lp.text_offset or []] == logprobs.text_offset
    for lp in carrying:
        assert all(len(alternatives) == 1 for alternatives in lp.top_logprobs or [])


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"logprobs": 6}, "logprobs"),
        ({"logprobs": -1}, "logprobs"),
        ({"logprobs": True}, "logprobs"),
        ({"logprobs": 2, "echo": True}, "echo"),
        ({"logprobs": 2, "presence_penalty": 0.5}, "presence_penalty"),
    ],
)
async def test_completions_refuse_what_they_cannot_give_by_name(
    config: dict[str, Any], extra: dict[str, Any], param: str
) -> None:
    body: Any = {"model": "tiny", "prompt": "hello", "max_tokens": 4, **extra}
    async with serving(config) as (oa, _):
        with pytest.raises(openai.BadRequestError) as refused:
            await oa.completions.create(**body)
    error: Any = refused.value.body
    assert (error["type"], error["param"]) == ("invalid_request_error", param)
    assert param in error["message"]


def test_legacy_logprobs_offsets_run_on_across_a_streams_chunks() -> None:
    def entry(token: str, logprob: float) -> dict[str, Any]:
        top = [{"token": "x", "logprob": -0.1}, {"token": token, "logprob": logprob}]
        return {"token": token, "logprob": logprob, "bytes": [], "top_logprobs": top}

    def event(*tokens: str) -> dict[str, Any]:
        scores = {"content": [entry(t, -1.0) for t in tokens], "refusal": None}
        delta = {"content": "".join(tokens)}
        return {"choices": [{"index": 0, "delta": delta, "logprobs": scores}]}

    offsets: dict[int, int] = {}
    made = ("cmpl-1", 0)
    first = chunk(event("ab", "c"), made, offsets)["choices"][0]["logprobs"]
    second = chunk(event("de"), made, offsets)["choices"][0]["logprobs"]
    assert first == {
        "tokens": ["ab", "c"],
        "token_logprobs": [-1.0, -1.0],
        "top_logprobs": [{"x": -0.1, "ab": -1.0}, {"x": -0.1, "c": -1.0}],
        "text_offset": [0, 2],
    }
    assert second["text_offset"] == [3]
    assert legacy_logprobs(None) is None


# -- tool calls, streamed in pieces ---------------------------------------------------------

WEATHER: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "pattern": "^[A-Z][a-z]{1,8}$"},
                "unit": {"enum": ["C", "F"]},
            },
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
    },
}
ASK: Any = [{"role": "user", "content": "What is the weather in Paris"}]


@pytest.mark.parametrize(
    ("choice", "sampling"),
    [
        ("required", {"temperature": 0}),
        ({"type": "function", "function": {"name": "get_weather"}}, {"temperature": 0}),
        ("required", {"temperature": 1, "seed": 3}),
    ],
)
async def test_a_streamed_tool_call_comes_in_pieces_the_sdk_puts_together(
    config: dict[str, Any], choice: Any, sampling: dict[str, Any]
) -> None:
    jsonschema = need_module("jsonschema")
    asked: Any = {
        "model": "tiny",
        "messages": ASK,
        "tools": [WEATHER],
        "tool_choice": choice,
        "parallel_tool_calls": False,
        "max_tokens": 120,  # one token a character: the call is about 70
        **sampling,
    }
    async with serving(config) as (oa, _):
        async with oa.chat.completions.stream(**asked) as stream:
            events = [event async for event in stream]
            final = await stream.get_final_completion()
        whole = await oa.chat.completions.create(**asked)

    fragments = [
        e for e in events if e.type == "tool_calls.function.arguments.delta" and e.arguments_delta
    ]
    assert len(fragments) > 1  # the arguments came as they were decoded, not whole
    [streamed] = final.choices
    assert streamed.finish_reason == "tool_calls"
    [call] = streamed.message.tool_calls or []
    assert call.id.startswith("call_")
    assert call.function.name == "get_weather"
    arguments = json.loads(call.function.arguments)
    jsonschema.validate(arguments, WEATHER["function"]["parameters"])
    assert "".join(f.arguments_delta for f in fragments) == call.function.arguments
    [done] = [e for e in events if e.type == "tool_calls.function.arguments.done"]
    assert done.arguments == call.function.arguments
    # The same request whole: the same call (seeded or greedy), with a new id.
    [same] = whole.choices[0].message.tool_calls or []
    assert (same.function.name, json.loads(same.function.arguments)) == ("get_weather", arguments)
    assert same.id != call.id


async def test_a_call_cut_by_max_tokens_is_a_partial_call_whole_and_streamed(
    config: dict[str, Any],
) -> None:
    asked: Any = {
        "model": "tiny",
        "messages": ASK,
        "tools": [WEATHER],
        "tool_choice": "required",
        "parallel_tool_calls": False,
        "max_tokens": 40,  # the call is about 70 tokens
        "temperature": 0,
    }
    async with serving(config) as (oa, _):
        whole = await oa.chat.completions.create(**asked)
        pieces = [c async for c in await oa.chat.completions.create(**asked, stream=True)]
    [choice] = whole.choices
    assert choice.finish_reason == "length"
    assert choice.message.content is None
    [call] = choice.message.tool_calls or []
    assert call.function.name == "get_weather"
    assert call.function.arguments.startswith("{")
    with pytest.raises(json.JSONDecodeError):
        json.loads(call.function.arguments)  # cut short: what a client must check for
    streamed = "".join(
        t.function.arguments or ""
        for c in pieces
        for ch in c.choices
        for t in ch.delta.tool_calls or []
        if t.function is not None
    )
    assert streamed == call.function.arguments  # greedy: the same call, the same cut
    assert [ch.finish_reason for c in pieces for ch in c.choices if ch.finish_reason] == ["length"]


async def test_the_messages_and_responses_doors_stream_the_call_in_pieces_too(
    config: dict[str, Any],
) -> None:
    jsonschema = need_module("jsonschema")
    function = WEATHER["function"]
    parameters = function["parameters"]
    async with serving(config) as (oa, an):
        async with an.messages.stream(
            model="tiny",
            max_tokens=120,
            messages=ASK,
            tools=[{"name": "get_weather", "input_schema": parameters}],
            tool_choice={"type": "tool", "name": "get_weather"},
            extra_body={"temperature": 0},  # this SDK has no parameter for it
        ) as stream:
            kinds = [event.type async for event in stream]
            message = await stream.get_final_message()
        tools: Any = [{"type": "function", "strict": True, **function}]
        async with oa.responses.stream(
            model="tiny",
            input="What is the weather in Paris",
            tools=tools,
            tool_choice={"type": "function", "name": "get_weather"},
            max_output_tokens=120,
            temperature=0,
        ) as events:
            pieces = [
                e.delta async for e in events if e.type == "response.function_call_arguments.delta"
            ]
            response = await events.get_final_response()
    [block] = [b for b in message.content if b.type == "tool_use"]
    assert block.name == "get_weather"
    jsonschema.validate(block.input, parameters)
    assert message.stop_reason == "tool_use"
    assert kinds.count("input_json") > 1
    [call] = [item for item in response.output if item.type == "function_call"]
    assert call.name == "get_weather"
    assert len([p for p in pieces if p]) > 1
    assert "".join(pieces) == call.arguments
    assert json.loads(call.arguments) == block.input  # greedy: the same call through both
