"""``/v1/responses`` end to end, with the official ``openai`` SDK (strict about every shape) as
the client: whole and streamed answers over an OpenAI and an Anthropic upstream, a
conversation by ``previous_response_id``, a function-calling round trip, stored responses
(retrieve, input items, delete, per team), and the 400s for what the gateway cannot do."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.conformance.recordings import (
    AN_TOOL_USES,
    OA_MID_STREAM_ERROR,
    OA_TOOL_CALLS,
    OA_TOOL_STREAM,
    an_block_start,
    an_message,
    an_start,
    an_text,
    an_text_stream,
    oa_chunk,
    oa_completion,
    oa_stream,
    oa_text_stream,
)
from tests.conftest import GatewayProcess, need_module, openai_sdk, team_key
from tests.fakes.replay_upstream import ReplayUpstream, Reply

pytestmark = pytest.mark.e2e
MASTER = "sk-master-responses"
WEATHER_TOOL: Any = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


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
            "auth": {"master_key": MASTER, "refresh_seconds": 0.2},
            "observability": {"teams": {"quiet": {"bodies": "metadata"}}},
        }
    )
    return gw


@pytest.fixture(scope="module")
def key(gateway: GatewayProcess) -> str:
    return team_key(gateway, "alpha", MASTER)


@pytest.fixture
def oa(gateway: GatewayProcess, key: str) -> Iterator[openai.OpenAI]:
    with openai_sdk(gateway, key) as client:
        yield client


def test_a_whole_answer_from_openai(oa: openai.OpenAI, replay: ReplayUpstream) -> None:
    replay.script("gpt", oa_completion({"content": "Paris."}, "stop", usage=(20, 3)))
    response = oa.responses.create(
        model="gpt-4o",
        instructions="Answer in one word.",
        input="What is the capital of France?",
        max_output_tokens=50,
        temperature=0.2,
        metadata={"ticket": "42"},
    )
    assert response.output_text == "Paris."
    assert response.status == "completed"
    assert response.id.startswith("resp_")
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (20, 3)
    assert response.instructions == "Answer in one word."
    assert response.metadata == {"ticket": "42"}
    [sent] = replay.take("gpt")
    assert sent.path.endswith("/chat/completions")
    assert sent.body["messages"] == [
        {"role": "system", "content": "Answer in one word."},
        {"role": "user", "content": "What is the capital of France?"},
    ]
    assert sent.body["max_completion_tokens"] == 50
    assert sent.body["temperature"] == 0.2
    assert "metadata" not in sent.body
    assert "instructions" not in sent.body


def test_a_conversation_by_previous_response_id(oa: openai.OpenAI, replay: ReplayUpstream) -> None:
    replay.script("gpt", oa_completion({"content": "Hello Ada."}, "stop"))
    first = oa.responses.create(model="gpt-4o", instructions="Be brief.", input="My name is Ada.")
    replay.script("gpt", oa_completion({"content": "Ada."}, "stop"))
    second = oa.responses.create(
        model="gpt-4o", input="What is my name?", previous_response_id=first.id
    )
    assert second.output_text == "Ada."
    assert second.previous_response_id == first.id
    _, sent = replay.take("gpt")
    # The instructions are not carried over (as OpenAI does); the conversation is.
    assert sent.body["messages"] == [
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": "Hello Ada."},
        {"role": "user", "content": "What is my name?"},
    ]


def test_a_function_calling_round_trip(oa: openai.OpenAI, replay: ReplayUpstream) -> None:
    replay.script(
        "gpt", oa_completion({"content": None, "tool_calls": OA_TOOL_CALLS[:1]}, "tool_calls")
    )
    asked = oa.responses.create(
        model="gpt-4o", input="Weather in Paris?", tools=[WEATHER_TOOL], tool_choice="auto"
    )
    [call] = [item for item in asked.output if item.type == "function_call"]
    assert (call.name, json.loads(call.arguments)) == ("get_weather", {"city": "Paris"})
    assert call.call_id == "call_rec1"
    [sent] = replay.take("gpt")
    assert sent.body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "The weather in a city.",
                "parameters": WEATHER_TOOL["parameters"],
            },
        }
    ]
    replay.script("gpt", oa_completion({"content": "Sunny in Paris."}, "stop"))
    answered = oa.responses.create(
        model="gpt-4o",
        previous_response_id=asked.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "Sunny"}],
        tools=[WEATHER_TOOL],
    )
    assert answered.output_text == "Sunny in Paris."
    [sent] = replay.take("gpt")
    assert sent.body["messages"][1:] == [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_rec1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_rec1", "content": "Sunny"},
    ]


def test_a_stream_with_every_event(oa: openai.OpenAI, replay: ReplayUpstream) -> None:
    replay.script("gpt", oa_text_stream(["Bon", "jour", "!"], usage=(9, 3)))
    with oa.responses.stream(model="gpt-4o", input="Say hello in French.") as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert final.output_text == "Bonjour!"
    assert final.usage is not None
    assert final.usage.output_tokens == 3
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds.count("response.output_text.delta") == 3
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    # Stored as streamed: retrievable at once.
    assert oa.responses.retrieve(final.id).output_text == "Bonjour!"


def test_a_streamed_function_call(oa: openai.OpenAI, replay: ReplayUpstream) -> None:
    replay.script("gpt", OA_TOOL_STREAM)
    with oa.responses.stream(
        model="gpt-4o", input="Weather and time?", tools=[WEATHER_TOOL]
    ) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    calls = [(i.name, json.loads(i.arguments)) for i in final.output if i.type == "function_call"]
    assert calls == [("get_weather", {"city": "Paris"}), ("get_time", {"timezone": "Asia/Tokyo"})]
    assert "response.function_call_arguments.delta" in kinds
    assert kinds.count("response.function_call_arguments.done") == 2
    replay.take("gpt")


def test_claude_whole_and_streamed(oa: openai.OpenAI, replay: ReplayUpstream) -> None:
    replay.script("claude", an_message([{"type": "text", "text": "Bonjour."}], "end_turn"))
    whole = oa.responses.create(model="claude", input="Hello in French?", max_output_tokens=64)
    assert whole.output_text == "Bonjour."
    [sent] = replay.take("claude")
    assert sent.path.endswith("/messages")
    assert sent.body["max_tokens"] == 64
    replay.script("claude", an_text_stream(["Bon", "jour."]))
    with oa.responses.stream(model="claude", input="Hello in French?") as stream:
        final = stream.get_final_response()
    assert final.output_text == "Bonjour."
    replay.take("claude")


def test_claude_function_call(oa: openai.OpenAI, replay: ReplayUpstream) -> None:
    replay.script("claude", an_message(AN_TOOL_USES, "tool_use"))
    response = oa.responses.create(model="claude", input="Weather?", tools=[WEATHER_TOOL])
    assert [i.name for i in response.output if i.type == "function_call"] == [
        "get_weather",
        "get_time",
    ]
    replay.take("claude")


def test_json_schema_format_reaches_the_upstream(oa: openai.OpenAI, replay: ReplayUpstream) -> None:
    replay.script("gpt", oa_completion({"content": '{"city": "Paris"}'}, "stop"))
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    }
    response = oa.responses.create(
        model="gpt-4o",
        input="Capital of France as JSON.",
        text={"format": {"type": "json_schema", "name": "city", "schema": schema, "strict": True}},
    )
    assert json.loads(response.output_text) == {"city": "Paris"}
    [sent] = replay.take("gpt")
    assert sent.body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "city", "schema": schema, "strict": True},
    }


def test_stored_responses_retrieve_items_delete(
    oa: openai.OpenAI, gateway: GatewayProcess, replay: ReplayUpstream
) -> None:
    replay.script("gpt", oa_completion({"content": "Hi."}, "stop"))
    created = oa.responses.create(
        model="gpt-4o",
        input=[
            {"role": "developer", "content": "Be kind."},
            {"role": "user", "content": [{"type": "input_text", "text": "Hello"}]},
        ],
    )
    replay.take("gpt")
    assert oa.responses.retrieve(created.id).output_text == "Hi."
    items = oa.responses.input_items.list(created.id, order="asc")
    assert [i.type for i in items.data] == ["message", "message"]
    assert [getattr(i, "role", None) for i in items.data] == ["developer", "user"]
    # Another team does not see it; the master key does.
    other = team_key(gateway, "beta", MASTER)
    with openai_sdk(gateway, other) as stranger, pytest.raises(openai.NotFoundError):
        stranger.responses.retrieve(created.id)
    with openai_sdk(gateway, MASTER) as master:
        assert master.responses.retrieve(created.id).id == created.id
    with openai_sdk(gateway, other) as stranger, pytest.raises(openai.NotFoundError):
        stranger.responses.create(model="gpt-4o", input="Go on.", previous_response_id=created.id)
    oa.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError):
        oa.responses.retrieve(created.id)


def test_store_false_and_a_team_that_stores_no_bodies(
    oa: openai.OpenAI, gateway: GatewayProcess, replay: ReplayUpstream
) -> None:
    replay.script("gpt", oa_completion({"content": "Hi."}, "stop"))
    unstored = oa.responses.create(model="gpt-4o", input="Hello", store=False)
    assert unstored.to_dict()["store"] is False
    replay.take("gpt")
    with pytest.raises(openai.NotFoundError):
        oa.responses.retrieve(unstored.id)
    quiet = team_key(gateway, "quiet", MASTER)
    with openai_sdk(gateway, quiet) as client:
        replay.script("gpt", oa_completion({"content": "Hi."}, "stop"))
        assert client.responses.create(model="gpt-4o", input="Hello").to_dict()["store"] is False
        replay.take("gpt")
        with pytest.raises(openai.BadRequestError) as refused:
            client.responses.create(model="gpt-4o", input="Hello", store=True)
    assert refused.value.body["param"] == "store"  # type: ignore[index]


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"tools": [{"type": "web_search"}]}, "tools[0].type"),
        ({"background": True}, "background"),
        ({"include": ["reasoning.encrypted_content"]}, "include"),
        ({"truncation": "auto"}, "truncation"),
        ({"reasoning": {"summary": "auto"}}, "reasoning.summary"),
        ({"conversation": "conv_1"}, "conversation"),
        ({"frobnicate": 1}, "frobnicate"),
        ({"user": "u1", "safety_identifier": "s1"}, "safety_identifier"),
        ({"input": [{"type": "web_search_call", "id": "ws_1"}]}, "input[0].type"),
        ({"previous_response_id": "resp_nope"}, "previous_response_id"),
    ],
)
def test_what_cannot_be_honoured_is_refused_by_name(
    gateway: GatewayProcess, key: str, replay: ReplayUpstream, extra: dict[str, Any], param: str
) -> None:
    body = {"model": "gpt-4o", "input": "Hello", **extra}
    answer = httpx.post(
        f"{gateway.base_url}/responses", json=body, headers={"authorization": f"Bearer {key}"}
    )
    assert answer.status_code in (400, 404), answer.text
    assert answer.json()["error"]["param"] == param
    assert replay.take("gpt") == []


def test_no_key_no_lookup(gateway: GatewayProcess) -> None:
    answer = httpx.post(
        f"{gateway.base_url}/responses",
        json={"model": "gpt-4o", "input": "Hi", "previous_response_id": "resp_x"},
    )
    assert answer.status_code == 401


def test_an_upstream_failure_mid_stream_is_an_error_event(
    oa: openai.OpenAI, replay: ReplayUpstream
) -> None:
    replay.script("gpt", OA_MID_STREAM_ERROR)
    with oa.responses.stream(model="gpt-4o", input="Tell me.") as stream:
        events = list(stream)
        with pytest.raises(RuntimeError, match=r"response\.completed"):
            stream.get_final_response()
    assert events[-1].type == "error"
    assert "response.completed" not in [e.type for e in events]
    replay.take("gpt")


def test_the_responses_door_ends_a_cut_stream_with_an_error_event(
    oa: openai.OpenAI, replay: ReplayUpstream
) -> None:
    """An upstream stream that stops before its end (a chat stream with no finish_reason and
    no [DONE]; a Claude stream with no message_stop) ends with an ``error`` event after what
    came, never ``response.completed``, and is not stored as if it were whole."""
    replay.script(
        "gpt",
        oa_stream(
            oa_chunk({"role": "assistant", "content": ""}),
            oa_chunk({"content": "Bonj"}),
            done=False,
        ),
    )
    replay.script(
        "claude",
        Reply(
            sse=[an_start(), an_block_start(0, {"type": "text", "text": ""}), an_text(0, "Bonj")]
        ),
    )
    for model in ("gpt-4o", "claude"):
        with oa.responses.stream(model=model, input="Hello in French?") as stream:
            events = list(stream)
            with pytest.raises(RuntimeError, match=r"response\.completed"):
                stream.get_final_response()
        kinds = [event.type for event in events]
        assert kinds[0] == "response.created", model
        assert [e.delta for e in events if e.type == "response.output_text.delta"] == ["Bonj"]
        assert kinds[-1] == "error", (model, kinds)
        assert not {"response.completed", "response.incomplete"} & set(kinds)
        last = events[-1]
        assert last.type == "error"
        assert last.code == "upstream_error"
        assert "ended the stream" in last.message or "message_stop" in last.message, last.message
        created = events[0]
        assert created.type == "response.created"
        with pytest.raises(openai.NotFoundError):
            oa.responses.retrieve(created.response.id)
    assert len(replay.take("gpt")) == 1
    assert len(replay.take("claude")) == 1


def test_an_openai_agent_calls_a_function_tool(
    gateway: GatewayProcess, key: str, replay: ReplayUpstream
) -> None:
    agents = need_module("agents")
    seen: list[str] = []

    @agents.function_tool  # type: ignore[untyped-decorator]
    def get_weather(city: str) -> str:
        """The weather in a city."""
        seen.append(city)
        return f"Sunny in {city}"

    agents.set_tracing_disabled(True)  # no export to OpenAI's tracing service

    async def run() -> Any:
        async with openai.AsyncOpenAI(
            base_url=gateway.base_url, api_key=key, max_retries=0
        ) as client:
            agent = agents.Agent(
                name="weather",
                instructions="Answer with the tool.",
                tools=[get_weather],
                model=agents.OpenAIResponsesModel(model="gpt-4o", openai_client=client),
            )
            return await agents.Runner.run(agent, "What is the weather in Paris?")

    replay.script(
        "gpt", oa_completion({"content": None, "tool_calls": OA_TOOL_CALLS[:1]}, "tool_calls")
    )
    replay.script("gpt", oa_completion({"content": "It is sunny in Paris."}, "stop"))
    result = asyncio.run(run())
    assert result.final_output == "It is sunny in Paris."
    assert seen == ["Paris"]
    first, second = replay.take("gpt")
    assert [t["function"]["name"] for t in first.body["tools"]] == ["get_weather"]
    assert second.body["messages"][-1] == {
        "role": "tool",
        "tool_call_id": "call_rec1",
        "content": "Sunny in Paris",
    }
