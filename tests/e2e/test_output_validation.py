"""Output validation through a real gateway: a JSON answer to a request with a
``response_format`` schema is repaired when it can be, asked for once more when it cannot, and
otherwise refused with a clear error (the official ``openai`` SDK as the client)."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pydantic
import pytest

from tests.conformance.recordings import an_message, oa_completion
from tests.conftest import GatewayProcess, openai_sdk
from tests.e2e.doors import anthropic_sdk
from tests.fakes.replay_upstream import ReplayUpstream

pytestmark = pytest.mark.e2e

CITY_FORMAT: Any = {
    "type": "json_schema",
    "json_schema": {
        "name": "city",
        "schema": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "people": {"type": "integer"}},
            "required": ["city", "people"],
        },
    },
}


@pytest.fixture(scope="module")
def validating(replay: ReplayUpstream, gateway_factory: Any) -> GatewayProcess:
    gw: GatewayProcess = gateway_factory(
        {
            "models": [
                {
                    "name": "gpt",
                    "provider": "openai",
                    "api_base": replay.base_url("json-out"),
                    "api_key": "sk-openai",
                },
                {
                    "name": "claude",
                    "provider": "anthropic",
                    "model": "claude-sonnet-4-5",
                    "api_base": replay.base_url("json-claude"),
                    "api_key": "sk-ant",
                },
            ],
            "router": {"retries": 0},
            "guardrails": {"json_output": {"action": "reask"}},
        }
    )
    return gw


def ask_city(gateway: GatewayProcess) -> Any:
    with openai_sdk(gateway) as client:
        return client.chat.completions.with_raw_response.create(
            model="gpt",
            messages=[{"role": "user", "content": "The largest city in France?"}],
            response_format=CITY_FORMAT,
        )


def test_a_fenced_json_answer_is_repaired(
    validating: GatewayProcess, replay: ReplayUpstream
) -> None:
    fenced = '```json\n{"city": "Paris", "people": 2100000}\n```'
    replay.script("json-out", oa_completion({"content": fenced}, "stop"))
    raw = ask_city(validating)
    assert raw.headers["x-stackyard-guardrails-json"] == "repaired"
    assert raw.parse().choices[0].message.content == '{"city": "Paris", "people": 2100000}'
    assert len(replay.take("json-out")) == 1


def test_the_responses_door_repairs_a_fenced_json_answer_too(
    validating: GatewayProcess, replay: ReplayUpstream
) -> None:
    """The same stage behind OpenAI's Responses API: ``text.format`` with a JSON schema is the
    ``response_format`` checked, and the fenced answer comes back as the bare JSON."""
    fenced = '```json\n{"city": "Paris", "people": 2100000}\n```'
    replay.script("json-out", oa_completion({"content": fenced}, "stop"))
    city = CITY_FORMAT["json_schema"]
    with openai_sdk(validating) as client:
        raw = client.responses.with_raw_response.create(
            model="gpt",
            input="The largest city in France?",
            text={
                "format": {"type": "json_schema", "name": city["name"], "schema": city["schema"]}
            },
        )
    assert raw.headers["x-stackyard-guardrails-json"] == "repaired"
    response = raw.parse()
    assert response.output_text == '{"city": "Paris", "people": 2100000}'
    assert response.status == "completed"
    [sent] = replay.take("json-out")
    assert sent.body["response_format"] == CITY_FORMAT


def test_a_wrong_answer_is_asked_again_once(
    validating: GatewayProcess, replay: ReplayUpstream
) -> None:
    replay.script(
        "json-out",
        oa_completion({"content": '{"city": "Paris", "people": "many"}'}, "stop", (20, 8)),
        oa_completion({"content": '{"city": "Paris", "people": 2100000}'}, "stop", (40, 9)),
    )
    raw = ask_city(validating)
    assert raw.headers["x-stackyard-guardrails-json"] == "reasked"
    completion = raw.parse()
    assert completion.choices[0].message.content == '{"city": "Paris", "people": 2100000}'
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (60, 17)
    _, second = replay.take("json-out")
    told = second.body["messages"][-1]["content"]
    assert "at people: 'many' is not of type 'integer'" in told
    assert second.body["messages"][-2] == {
        "role": "assistant",
        "content": '{"city": "Paris", "people": "many"}',
    }


def test_a_second_wrong_answer_is_a_clear_error(
    validating: GatewayProcess, replay: ReplayUpstream
) -> None:
    bad = oa_completion({"content": "Paris, about two million people."}, "stop")
    replay.script("json-out", bad, bad)
    with pytest.raises(openai.InternalServerError) as info:
        ask_city(validating)
    assert info.value.status_code == 502
    body: Any = info.value.body
    assert body["code"] == "invalid_json_output"
    assert body["param"] == "response_format"
    assert "not valid JSON" in body["message"]
    assert len(replay.take("json-out")) == 2  # asked once more, not again and again


class City(pydantic.BaseModel):
    city: str
    people: int


CITY_OUTPUT: Any = {"format": {"type": "json_schema", "schema": City.model_json_schema()}}


def test_the_messages_door_checks_claude_structured_output(
    validating: GatewayProcess, replay: ReplayUpstream
) -> None:
    """Anthropic's structured output (``output_config.format``, as the SDK's ``parse()`` sends
    it) passes through to Claude as it is, and the answer is checked on its way back: prose
    around the JSON is taken off, and ``parse()`` gets its object."""
    replay.script(
        "json-claude",
        an_message(
            [{"type": "text", "text": 'Here it is: {"city": "Paris", "people": 2100000}'}],
            "end_turn",
        ),
    )
    with anthropic_sdk(validating) as client:
        message = client.messages.parse(
            model="claude",
            max_tokens=100,
            messages=[{"role": "user", "content": "The largest city in France?"}],
            output_format=City,
        )
    assert message.parsed_output == City(city="Paris", people=2100000)
    [sent] = replay.take("json-claude")
    assert sent.body["output_config"]["format"]["type"] == "json_schema"
    assert "response_format" not in sent.body


def test_the_messages_door_asks_again_in_messages_terms(
    validating: GatewayProcess, replay: ReplayUpstream
) -> None:
    """An answer that does not match the schema is asked for again as a Messages request (the
    bad answer as the assistant's turn, what was wrong as the user's), and the usage of both
    calls is the answer's."""
    replay.script(
        "json-claude",
        an_message(
            [{"type": "text", "text": '{"city": "Paris", "people": "many"}'}],
            "end_turn",
            {"input_tokens": 20, "output_tokens": 8},
        ),
        an_message(
            [{"type": "text", "text": '{"city": "Paris", "people": 2100000}'}],
            "end_turn",
            {"input_tokens": 40, "output_tokens": 9},
        ),
    )
    with anthropic_sdk(validating) as client:
        raw = client.messages.with_raw_response.create(
            model="claude",
            max_tokens=100,
            messages=[{"role": "user", "content": "The largest city in France?"}],
            output_config=CITY_OUTPUT,
        )
    assert raw.headers["x-stackyard-guardrails-json"] == "reasked"
    message = raw.parse()
    [block] = message.content
    assert block.type == "text"
    assert City.model_validate_json(block.text) == City(city="Paris", people=2100000)
    assert (message.usage.input_tokens, message.usage.output_tokens) == (60, 17)
    _, second = replay.take("json-claude")
    assert second.body["messages"][-2] == {
        "role": "assistant",
        "content": [{"type": "text", "text": '{"city": "Paris", "people": "many"}'}],
    }
    assert "at people: 'many' is not of type 'integer'" in second.body["messages"][-1]["content"]


def test_the_messages_door_gives_an_openai_model_the_schema_and_checks_it(
    validating: GatewayProcess, replay: ReplayUpstream
) -> None:
    """For a model served in OpenAI's format, ``output_config.format`` becomes
    ``response_format``; the fenced answer is repaired before it is made a Messages reply."""
    fenced = '```json\n{"city": "Paris", "people": 2100000}\n```'
    replay.script("json-out", oa_completion({"content": fenced}, "stop"))
    with anthropic_sdk(validating) as client:
        raw = client.messages.with_raw_response.create(
            model="gpt",
            max_tokens=100,
            messages=[{"role": "user", "content": "The largest city in France?"}],
            output_config=CITY_OUTPUT,
        )
    assert raw.headers["x-stackyard-guardrails-json"] == "repaired"
    [block] = raw.parse().content
    assert block.type == "text"
    assert block.text == '{"city": "Paris", "people": 2100000}'
    [sent] = replay.take("json-out")
    sent_format = sent.body["response_format"]
    assert sent_format["type"] == "json_schema"
    assert sent_format["json_schema"]["schema"]["required"] == ["city", "people"]


def test_the_messages_door_error_names_output_config(
    validating: GatewayProcess, replay: ReplayUpstream
) -> None:
    bad = an_message([{"type": "text", "text": "Paris, about two million people."}], "end_turn")
    replay.script("json-claude", bad, bad)
    with anthropic_sdk(validating) as client, pytest.raises(anthropic.InternalServerError) as info:
        client.messages.parse(
            model="claude",
            max_tokens=100,
            messages=[{"role": "user", "content": "The largest city in France?"}],
            output_format=City,
        )
    assert info.value.status_code == 502
    body: Any = info.value.body
    assert body["type"] == "error"
    assert body["error"]["message"].startswith("output_config.format: ")
    assert "not valid JSON" in body["error"]["message"]
    assert len(replay.take("json-claude")) == 2
