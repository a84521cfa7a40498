"""OTLP export from a real gateway in every protocol the spec defines, and from the standard
``OTEL_EXPORTER_OTLP_*`` environment variables (the config file winning over them). The
default protocol, binary protobuf, is in ``test_observability.py``."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import GatewayProcess, openai_sdk
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.otlp_receiver import GRPCReceiver, OTLPReceiver, attributes

pytestmark = pytest.mark.e2e

#: Variables a developer's shell may hold, cleared so that each gateway sees only the test's.
OTEL_VARIABLES = [
    f"OTEL_EXPORTER_OTLP_{signal}{name}"
    for signal in ("", "TRACES_")
    for name in ("ENDPOINT", "HEADERS", "PROTOCOL", "COMPRESSION", "TIMEOUT", "INSECURE")
] + ["OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES"]


@pytest.fixture
def receiver() -> Iterator[OTLPReceiver]:
    running = OTLPReceiver()
    running.start()
    yield running
    running.stop()


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in OTEL_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def _config(fake: FakeOpenAI, otlp: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "models": [
            {
                "name": "m",
                "provider": "openai-compatible",
                "model": "fake-small",
                "api_base": fake.base_url("otlp-export"),
            }
        ],
        "observability": {"otlp": otlp or {}},
    }


def _chat(gateway: GatewayProcess) -> str:
    """One chat request in a trace of our own; its trace id."""
    trace_id = uuid.uuid4().hex
    with openai_sdk(gateway) as client:
        client.chat.completions.create(
            model="m",
            messages=[{"role": "user", "content": "Export me"}],
            extra_headers={"x-stackyard-trace-id": trace_id},
        )
    return trace_id


def test_http_json(fake_openai: FakeOpenAI, gateway_factory: Any) -> None:
    receiver = OTLPReceiver("json")  # takes application/json only
    receiver.start()
    try:
        gateway = gateway_factory(
            _config(fake_openai, {"endpoint": receiver.endpoint, "protocol": "http/json"})
        )
        trace_id = _chat(gateway)
        spans = receiver.wait_for(trace_id, 3)
        assert sorted(s.name for s in spans) == ["chat fake-small", "chat m", "gateway.admission"]
        assert receiver.errors == []
        document = receiver.documents[-1]
        [raw] = [
            s
            for r in document["resourceSpans"]
            for scope in r["scopeSpans"]
            for s in scope["spans"]
            if s["name"] == "chat m"
        ]
        assert raw["traceId"] == trace_id  # hex in OTLP/JSON
        assert raw["kind"] == 2
        root = next(s for s in spans if s.name == "chat m")
        assert attributes(root)["gen_ai.operation.name"] == "chat"
    finally:
        receiver.stop()


def test_grpc(fake_openai: FakeOpenAI, gateway_factory: Any) -> None:
    receiver = GRPCReceiver()
    receiver.start()
    try:
        gateway = gateway_factory(
            _config(
                fake_openai,
                {"endpoint": receiver.endpoint, "protocol": "grpc", "headers": {"x-key": "k"}},
            )
        )
        trace_id = _chat(gateway)
        spans = receiver.wait_for(trace_id, 3)
        assert sorted(s.name for s in spans) == ["chat fake-small", "chat m", "gateway.admission"]
        root = next(s for s in spans if s.name == "chat m")
        assert attributes(root)["gen_ai.usage.input_tokens"] == 2
        assert receiver.headers[-1]["x-key"] == "k"
    finally:
        receiver.stop()


def test_the_standard_environment_variables(
    fake_openai: FakeOpenAI, gateway_factory: Any, receiver: OTLPReceiver
) -> None:
    gateway = gateway_factory(
        _config(fake_openai),  # nothing in the file
        env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.base,  # /v1/traces appended
            "OTEL_EXPORTER_OTLP_HEADERS": "x-collector-key=s%3Dcret",
            "OTEL_SERVICE_NAME": "edge",
            "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=test",
        },
    )
    trace_id = _chat(gateway)
    assert len(receiver.wait_for(trace_id, 3)) == 3
    assert set(receiver.content_types) == {"application/x-protobuf"}
    assert receiver.headers[-1]["x-collector-key"] == "s=cret"
    resource = receiver.resources()[-1]
    assert (resource["service.name"], resource["deployment.environment.name"]) == ("edge", "test")


def test_the_config_file_wins_over_the_environment(
    fake_openai: FakeOpenAI, gateway_factory: Any, receiver: OTLPReceiver
) -> None:
    elsewhere = OTLPReceiver("json")
    elsewhere.start()
    try:
        gateway = gateway_factory(
            _config(
                fake_openai,
                {
                    "endpoint": receiver.endpoint,
                    "protocol": "http/protobuf",
                    "service_name": "from-file",
                },
            ),
            env={
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": elsewhere.endpoint,
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
                "OTEL_SERVICE_NAME": "from-env",
                "OTEL_EXPORTER_OTLP_HEADERS": "x-from=env",  # the file sets none: taken
            },
        )
        trace_id = _chat(gateway)
        assert len(receiver.wait_for(trace_id, 3)) == 3
        assert receiver.errors == []
        assert set(receiver.content_types) == {"application/x-protobuf"}
        assert receiver.resources()[-1]["service.name"] == "from-file"
        assert receiver.headers[-1]["x-from"] == "env"
        assert elsewhere.content_types == []
    finally:
        elsewhere.stop()


def test_encoding_in_a_thread(
    fake_openai: FakeOpenAI, gateway_factory: Any, receiver: OTLPReceiver
) -> None:
    """``encoder: thread``: the same spans reach a protobuf-only collector, encoded in a worker
    thread of the server's instead of a process of their own (the default)."""
    gateway = gateway_factory(
        _config(fake_openai, {"endpoint": receiver.endpoint, "encoder": "thread"})
    )
    trace_id = _chat(gateway)
    spans = receiver.wait_for(trace_id, 3)
    assert sorted(s.name for s in spans) == ["chat fake-small", "chat m", "gateway.admission"]
    assert receiver.errors == []
    [root] = [s for s in spans if s.name == "chat m"]
    assert attributes(root)["gen_ai.request.model"] == "m"
