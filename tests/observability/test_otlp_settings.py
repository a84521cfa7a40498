"""Where the exporter sends: ``observability.otlp``, then the standard
``OTEL_EXPORTER_OTLP_*`` variables, then the spec's defaults."""

from __future__ import annotations

import pytest

from stackyard import __version__
from stackyard.config.loader import ConfigError
from stackyard.config.schema import OTLPConfig
from stackyard.observability.otlp import OTLPSettings, resolve


def test_no_endpoint_anywhere_means_no_export() -> None:
    assert resolve(OTLPConfig(), {}) is None
    assert resolve(OTLPConfig(protocol="grpc"), {"OTEL_SERVICE_NAME": "x"}) is None


def test_the_defaults_are_the_specs() -> None:
    settings = resolve(OTLPConfig(endpoint="http://c:4318/v1/traces"), {})
    assert settings == OTLPSettings(
        endpoint="http://c:4318/v1/traces",
        protocol="http/protobuf",
        compression="gzip",
        headers={},
        timeout=10.0,
        resource={"service.name": "stackyard", "service.version": __version__},
    )


def test_the_base_endpoint_gets_the_traces_path_and_the_signals_own_is_used_as_is() -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/"}
    assert resolve(OTLPConfig(), env).endpoint == "http://c:4318/v1/traces"  # type: ignore[union-attr]
    env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = "http://t:9999/custom"
    assert resolve(OTLPConfig(), env).endpoint == "http://t:9999/custom"  # type: ignore[union-attr]


def test_grpc_takes_the_base_endpoint_as_is() -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
    settings = resolve(OTLPConfig(), env)
    assert settings is not None
    assert (settings.endpoint, settings.grpc_target, settings.insecure) == (
        "http://c:4317",
        "c:4317",
        True,
    )
    tls = resolve(OTLPConfig(endpoint="https://c:4317", protocol="grpc"), {})
    assert tls is not None
    assert not tls.insecure
    bare = {"OTEL_EXPORTER_OTLP_TRACES_INSECURE": "true"}
    plain = resolve(OTLPConfig(endpoint="c:4317", protocol="grpc"), bare)
    assert plain is not None
    assert (plain.insecure, plain.grpc_target) == (True, "c:4317")


def test_every_variable_is_read() -> None:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318",
        "OTEL_EXPORTER_OTLP_HEADERS": "api-key=secret%20one, x-team = a%2Cb ,broken",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
        "OTEL_EXPORTER_OTLP_COMPRESSION": "none",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "2500",
        "OTEL_SERVICE_NAME": "edge-gateway",
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=prod,service.name=ignored",
    }
    settings = resolve(OTLPConfig(), env)
    assert settings == OTLPSettings(
        endpoint="http://c:4318/v1/traces",
        protocol="http/json",
        compression="none",
        headers={"api-key": "secret one", "x-team": "a,b"},  # URL-decoded
        timeout=2.5,
        resource={
            "service.name": "edge-gateway",  # OTEL_SERVICE_NAME wins over the attributes'
            "service.version": __version__,
            "deployment.environment.name": "prod",
        },
    )


def test_the_traces_variables_win_over_the_general_ones() -> None:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318",
        "OTEL_EXPORTER_OTLP_HEADERS": "a=1",
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "b=2",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
        "OTEL_RESOURCE_ATTRIBUTES": "service.name=from-attributes",
    }
    settings = resolve(OTLPConfig(), env)
    assert settings is not None
    assert (settings.headers, settings.protocol) == ({"b": "2"}, "http/protobuf")
    assert settings.resource["service.name"] == "from-attributes"


def test_the_config_file_wins_over_the_environment() -> None:
    env = {
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://env:4318/v1/traces",
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "from=env",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json",
        "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION": "none",
        "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "1000",
        "OTEL_SERVICE_NAME": "env-name",
    }
    config = OTLPConfig(
        endpoint="http://file:4318/v1/traces",
        headers={"from": "file"},
        protocol="http/protobuf",
        compression="gzip",
        timeout=3,
        service_name="file-name",
    )
    settings = resolve(config, env)
    assert settings is not None
    assert settings.endpoint == "http://file:4318/v1/traces"
    assert (settings.headers, settings.protocol, settings.compression, settings.timeout) == (
        {"from": "file"},
        "http/protobuf",
        "gzip",
        3,
    )
    assert settings.resource["service.name"] == "file-name"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/xml"),
        ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "brotli"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "soon"),
    ],
)
def test_a_value_the_spec_does_not_allow_is_a_config_error(variable: str, value: str) -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", variable: value}
    with pytest.raises(ConfigError, match=variable):
        resolve(OTLPConfig(), env)


def test_grpc_without_grpcio_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from stackyard.config import validate

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "grpc" else real(name, *a)
    )
    with pytest.raises(ConfigError, match=r"otlp: protocol grpc needs grpcio.*stackyard\[grpc\]"):
        validate({"observability": {"otlp": {"protocol": "grpc"}}}, source="s.yaml")
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
    with pytest.raises(ConfigError, match=r"stackyard\[grpc\]"):
        resolve(OTLPConfig(), env)


@pytest.mark.parametrize(
    "switch", [{"OTEL_SDK_DISABLED": "true"}, {"OTEL_TRACES_EXPORTER": "none"}]
)
def test_the_sdk_switches_turn_export_off_even_over_the_file(switch: dict[str, str]) -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", **switch}
    assert resolve(OTLPConfig(), env) is None
    assert resolve(OTLPConfig(endpoint="http://file:4318/v1/traces"), env) is None
    on = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "false"}
    assert resolve(OTLPConfig(), {**on, "OTEL_TRACES_EXPORTER": "otlp"}) is not None


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("OTEL_TRACES_EXPORTER", "zipkin"),
        ("OTEL_TRACES_EXPORTER", "console"),
        ("OTEL_SDK_DISABLED", "yes"),
    ],
)
def test_an_exporter_the_gateway_lacks_is_refused_not_ignored(variable: str, value: str) -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", variable: value}
    with pytest.raises(ConfigError, match=variable):
        resolve(OTLPConfig(), env)
