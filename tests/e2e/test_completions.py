"""``/v1/completions`` (legacy text completions) end to end, with the official ``openai`` SDK
as the client, over an OpenAI and an Anthropic upstream. (LlamaIndex's ``OpenAILike`` cannot
be a client here: its OpenAI integration needs ``openai<3``, and the lock has openai 3.)"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.conformance.recordings import (
    an_message,
    oa_chunk,
    oa_completion,
    oa_stream,
    oa_text_stream,
)
from tests.conftest import GatewayProcess, openai_sdk
from tests.fakes.replay_upstream import ReplayUpstream

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def gateway(replay: ReplayUpstream, gateway_factory: Any) -> GatewayProcess:
    gw: GatewayProcess = gateway_factory(
        {
            "models": [
                {
                    "name": "gpt-4o",
                    "provider": "openai",
                    "api_base": replay.base_url("gpt"),
                    "api_key": "sk-openai",
                },
                {
                    "name": "claude",
                    "provider": "anthropic",
                    "model": "claude-sonnet-4-5",
                    "api_base": replay.base_url("claude"),
                    "api_key": "sk-ant",
                },
            ],
            "router": {"retries": 0},
        }
    )
    return gw


@pytest.fixture
def oa(gateway: GatewayProcess) -> Iterator[openai.OpenAI]:
    with openai_sdk(gateway) as client:
        yield client


def test_a_completion(oa: openai.OpenAI, replay: ReplayUpstream) -> None:
    replay.script("gpt", oa_completion({"content": " blue."}, "stop", usage=(6, 2)))
    completion = oa.completions.create(model="gpt-4o", prompt="The sky is", temperature=0)
    assert completion.object == "text_completion"
    assert completion.id.startswith("cmpl-")
    [choice] = completion.choices
    assert (choice.text, choice.finish_reason) == (" blue.", "stop")
    assert completion.usage is not None
    assert completion.usage.total_tokens == 8
    [sent] = replay.take("gpt")
    assert sent.body["messages"] == [{"role": "user", "content": "The sky is"}]
    assert sent.body["max_tokens"] == 16  # OpenAI's legacy default
    assert sent.body["temperature"] == 0


def test_a_streamed_completion(gateway: GatewayProcess, replay: ReplayUpstream) -> None:
    replay.script("gpt", oa_text_stream([" bl", "ue."]))
    # Not strict: the SDK's Completion type has no null finish_reason, which every chunk but
    # the last carries, from OpenAI itself too (strict validation fails on OpenAI's stream).
    oa = openai.OpenAI(base_url=gateway.base_url, api_key="unused", max_retries=0)
    stream = oa.completions.create(
        model="gpt-4o",
        prompt="The sky is",
        max_tokens=5,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert "".join(c.choices[0].text for c in chunks if c.choices) == " blue."
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None
    assert chunks[-1].choices == []
    assert len({c.id for c in chunks}) == 1
    [sent] = replay.take("gpt")
    assert sent.body["max_tokens"] == 5


def test_a_cut_stream_ends_with_an_error_not_a_finish(
    gateway: GatewayProcess, replay: ReplayUpstream
) -> None:
    """An upstream stream that stops before its finish reason is an error the SDK raises,
    after the text that came; never a stream that looks whole."""
    replay.script(
        "gpt",
        oa_stream(
            oa_chunk({"role": "assistant", "content": ""}), oa_chunk({"content": " bl"}), done=False
        ),
    )
    oa = openai.OpenAI(base_url=gateway.base_url, api_key="unused", max_retries=0)
    texts: list[str] = []
    finishes: list[str | None] = []

    def read() -> None:
        for chunk in oa.completions.create(model="gpt-4o", prompt="The sky is", stream=True):
            texts.extend(c.text for c in chunk.choices)
            finishes.extend(c.finish_reason for c in chunk.choices)

    with pytest.raises(openai.APIError):
        read()
    assert "".join(texts) == " bl"
    assert not any(finishes)
    replay.take("gpt")


def test_claude_completes_too(oa: openai.OpenAI, replay: ReplayUpstream) -> None:
    replay.script("claude", an_message([{"type": "text", "text": " blue."}], "max_tokens"))
    completion = oa.completions.create(model="claude", prompt="The sky is", max_tokens=2)
    assert (completion.choices[0].text, completion.choices[0].finish_reason) == (
        " blue.",
        "length",
    )
    [sent] = replay.take("claude")
    assert sent.body["max_tokens"] == 2


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"suffix": "end"}, "suffix"),
        ({"echo": True}, "echo"),
        ({"best_of": 3}, "best_of"),
        ({"logprobs": 6}, "logprobs"),
        ({"prompt": ["one", "two"]}, "prompt"),
        ({"prompt": [1, 2, 3]}, "prompt"),
    ],
)
def test_what_cannot_be_honoured_is_refused_by_name(
    oa: openai.OpenAI, replay: ReplayUpstream, extra: dict[str, Any], param: str
) -> None:
    body: Any = {"model": "gpt-4o", "prompt": "Hi", **extra}
    with pytest.raises(openai.BadRequestError) as refused:
        oa.completions.create(**body)
    assert refused.value.body["param"] == param  # type: ignore[index]
    assert replay.take("gpt") == []
