"""Translation conformance: every front door x back end x case, against recorded upstreams.

Each test sends a client request through a real ``stackyard serve`` with an official SDK
(strict validation), and compares both what the upstream received and what the client got
with a reviewed golden file in ``expected/``. Semantic checks (tool calls, finish and stop
reasons, usage arithmetic) run on top, so a golden cannot silently bless a wrong answer.

Regenerate the goldens after a deliberate change, then review the diff:

    STACKYARD_UPDATE_GOLDEN=1 pytest tests/conformance
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from tests.conformance.cases import CASES, Case
from tests.conformance.expectations import check
from tests.conftest import GatewayProcess
from tests.fakes.replay_upstream import ReplayUpstream

pytestmark = pytest.mark.e2e

EXPECTED = Path(__file__).parent / "expected"
UPDATE = os.environ.get("STACKYARD_UPDATE_GOLDEN") == "1"

#: back end -> (model name at the gateway, replay deployment, wire format)
BACKENDS = {
    "openai": ("back-openai", "openai", "openai"),
    "anthropic": ("back-anthropic", "anthropic", "anthropic"),
    "compat": ("back-compat", "compat", "openai"),
}
DOORS = ("openai", "anthropic")
_GENERATED = re.compile(r"^(chatcmpl-|msg_|toolu_)[0-9a-f]{24}$")
_PORT = re.compile(r"127\.0\.0\.1:\d+")
_HEADERS = ("authorization", "x-api-key", "anthropic-version")


@pytest.fixture(scope="module")
def gateway(replay: ReplayUpstream, gateway_factory: Any) -> GatewayProcess:
    gw: GatewayProcess = gateway_factory(
        {
            "models": [
                {
                    "name": "back-openai",
                    "provider": "openai",
                    "model": "gpt-4o-mini",
                    "api_base": replay.base_url("openai"),
                    "api_key": "sk-openai",
                },
                {
                    "name": "back-anthropic",
                    "provider": "anthropic",
                    "model": "claude-haiku-4-5",
                    "api_base": replay.base_url("anthropic"),
                    "api_key": "sk-ant",
                },
                {
                    "name": "back-compat",
                    "provider": "openai-compatible",
                    "model": "Qwen/Qwen2.5-7B-Instruct",
                    "api_base": replay.base_url("compat"),
                },
            ],
            "router": {"retries": 0, "max_attempts": 1},
        }
    )
    return gw


def normalise(value: Any) -> Any:
    """Blank what the gateway generates afresh each time (ids, timestamps)."""
    if isinstance(value, dict):
        return {
            k: (0 if k == "created" and isinstance(v, int) else normalise(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [normalise(v) for v in value]
    if isinstance(value, str) and _GENERATED.match(value):
        return f"<{value.split('-')[0].split('_')[0]} id>"
    if isinstance(value, str):
        return _PORT.sub("127.0.0.1:PORT", value)
    return value


def raised(exc: openai.APIError | anthropic.APIError) -> dict[str, Any]:
    """A failure the SDK raised, as the wire carried it: the error body the gateway sent.

    How an SDK words its exception (its class, its message) changes between releases
    (anthropic 2.17 rewrote the message of a mid-stream error event); the body does not."""
    return {"raised": "APIError", "body": exc.body}


def via_openai(gateway: GatewayProcess, model: str, request: dict[str, Any]) -> dict[str, Any]:
    with openai.OpenAI(
        base_url=gateway.base_url, api_key="unused", max_retries=0, _strict_response_validation=True
    ) as client:
        if not request.get("stream"):
            raw = client.chat.completions.with_raw_response.create(model=model, **request)
            raw.parse()
            return {"response": raw.http_response.json()}
        chunks: list[Any] = []
        error = None
        try:
            for chunk in client.chat.completions.create(model=model, **request):
                chunks.append(chunk.model_dump(mode="json", exclude_unset=True))
        except openai.APIError as exc:
            error = raised(exc)
        return {"chunks": chunks, "error": error}


STREAM_EVENTS = {
    "message_start",
    "content_block_start",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
}


def via_anthropic(gateway: GatewayProcess, model: str, request: dict[str, Any]) -> dict[str, Any]:
    with anthropic.Anthropic(
        base_url=gateway.url, api_key="unused", max_retries=0, _strict_response_validation=True
    ) as client:
        if not request.get("stream"):
            raw = client.messages.with_raw_response.create(model=model, **request)
            raw.parse()
            return {"response": raw.http_response.json()}
        events: list[Any] = []
        final = None
        error = None
        body = {k: v for k, v in request.items() if k != "stream"}
        try:
            with client.messages.stream(model=model, **body) as stream:
                for event in stream:
                    if event.type in STREAM_EVENTS:
                        events.append(event.model_dump(mode="json", exclude_none=True))
                final = stream.get_final_message().model_dump(mode="json", exclude_none=True)
        except anthropic.APIError as exc:
            error = raised(exc)
        return {"events": events, "final": final, "error": error}


def observe(
    door: str, backend: str, case: Case, gateway: GatewayProcess, replay: ReplayUpstream
) -> dict[str, Any]:
    model, deployment, fmt = BACKENDS[backend]
    replay.forget(deployment)
    replay.script(deployment, case.reply(door, fmt))
    if door == "openai":
        client = via_openai(gateway, model, case.openai)
    else:
        client = via_anthropic(gateway, model, case.anthropic)
    received = replay.take(deployment)
    assert len(received) == 1, f"the upstream got {len(received)} requests"
    upstream = received[0]
    return {
        "upstream_request": {
            "path": upstream.path,
            "headers": {k: upstream.headers[k] for k in _HEADERS if k in upstream.headers},
            "body": upstream.body,
        },
        "client": normalise(client),
    }


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
@pytest.mark.parametrize("backend", list(BACKENDS))
@pytest.mark.parametrize("door", DOORS)
def test_translation(
    door: str, backend: str, case: Case, gateway: GatewayProcess, replay: ReplayUpstream
) -> None:
    observed = observe(door, backend, case, gateway, replay)
    check(door, BACKENDS[backend][2], case, observed)
    golden = EXPECTED / f"{door}-{backend}-{case.name}.json"
    text = json.dumps(observed, indent=2, sort_keys=True) + "\n"
    if UPDATE or not golden.exists():
        golden.write_text(text)
        if not UPDATE:
            pytest.fail(f"{golden.name} did not exist; written now: review and commit it")
    assert json.loads(golden.read_text()) == observed
