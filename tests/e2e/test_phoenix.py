"""A real Arize Phoenix receives the gateway's spans, over OTLP ``http/protobuf`` (the default
protocol, nothing configured but the endpoint), and its own REST API returns them with their
GenAI attributes.

Phoenix runs from the traces benchmark's venv (``benchmarks/.venvs/phoenix``, installed from its
lock, ``benchmarks/requirements/phoenix.txt``, on first use: about a minute). Locally the test
skips when that venv is not there yet; under CI it installs it."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import GatewayProcess, openai_sdk
from tests.fakes.openai_upstream import FakeOpenAI

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def phoenix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Phoenix's base URL, on SQLite in a scratch folder."""
    from benchmarks._phoenix import phoenix_venv, start_phoenix

    venv = Path(__file__).resolve().parents[2] / "benchmarks" / ".venvs" / "phoenix"
    made = (venv / ".ok").exists() or (venv / ".installed").exists()
    if not made and os.environ.get("CI") != "true":  # under CI it is installed here
        pytest.skip("Phoenix's venv is not installed (python -m benchmarks.traces makes it)")
    installed, _ = phoenix_venv()
    server, port = start_phoenix(installed, tmp_path_factory.mktemp("phoenix"), "sqlite", None)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def _spans(phoenix: str, trace_id: str) -> list[dict[str, Any]]:
    """The spans of one trace, as Phoenix's REST API returns them (every project)."""
    projects = httpx.get(f"{phoenix}/v1/projects", timeout=10).json()["data"]
    found: list[dict[str, Any]] = []
    for project in projects:
        reply = httpx.get(
            f"{phoenix}/v1/projects/{project['id']}/spans", params={"limit": 1000}, timeout=10
        )
        reply.raise_for_status()
        found += [s for s in reply.json()["data"] if s["context"]["trace_id"] == trace_id]
    return found


def test_phoenix_receives_the_spans_with_their_genai_attributes(
    phoenix: str, fake_openai: FakeOpenAI, gateway_factory: Any
) -> None:
    gateway: GatewayProcess = gateway_factory(
        {
            "models": [
                {
                    "name": "m",
                    "provider": "openai-compatible",
                    "model": "fake-small",
                    "api_base": fake_openai.base_url("phoenix"),
                }
            ],
            "observability": {"otlp": {"endpoint": f"{phoenix}/v1/traces"}},
        }
    )
    trace_id = uuid.uuid4().hex
    with openai_sdk(gateway) as client:
        client.chat.completions.create(
            model="m",
            messages=[{"role": "user", "content": "Trace me to Phoenix"}],
            max_tokens=20,
            extra_headers={"x-stackyard-trace-id": trace_id},
        )
    deadline = time.monotonic() + 60
    spans = _spans(phoenix, trace_id)
    while len(spans) < 3 and time.monotonic() < deadline:
        time.sleep(0.5)
        spans = _spans(phoenix, trace_id)
    names = sorted(s["name"] for s in spans)
    assert names == ["chat fake-small", "chat m", "gateway.admission"], names
    by_name = {s["name"]: s for s in spans}
    call = by_name["chat fake-small"]["attributes"]  # the upstream call
    assert call["gen_ai.operation.name"] == "chat"
    assert call["gen_ai.request.model"] == "fake-small"
    assert call["gen_ai.provider.name"] == "openai-compatible"
    root = by_name["chat m"]  # the request, parent of the other two
    assert root["parent_id"] is None
    assert by_name["chat fake-small"]["parent_id"] == root["context"]["span_id"]
    request = root["attributes"]
    assert request["gen_ai.request.model"] == "m"
    assert request["gen_ai.request.max_tokens"] == 20
    assert request["gen_ai.response.model"] == "fake-small"
    assert request["gen_ai.response.finish_reasons"] == ["stop"]
    assert request["gen_ai.usage.input_tokens"] == 4
    assert request["gen_ai.usage.output_tokens"] == 6
