"""Where the exporter sends, and how: ``observability.otlp`` in the config file, then the
standard OpenTelemetry environment variables (the signal's own ``OTEL_EXPORTER_OTLP_TRACES_*``
before the general ``OTEL_EXPORTER_OTLP_*``), then the defaults the OTLP exporter spec gives.

https://opentelemetry.io/docs/specs/otel/protocol/exporter/
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import get_args
from urllib.parse import unquote, urlsplit

from stackyard import __version__
from stackyard.config.loader import ConfigError
from stackyard.config.schema import OTLPConfig, OTLPProtocol

log = logging.getLogger("stackyard.otlp")

PROTOCOLS: tuple[str, ...] = get_args(OTLPProtocol)
COMPRESSIONS = ("gzip", "none")
DEFAULT_TIMEOUT = 10.0
GRPC_MISSING = (
    "observability.otlp.protocol: grpc needs grpcio, which is not installed "
    "(pip install 'stackyard[grpc]')"
)


@dataclass(frozen=True, slots=True)
class OTLPSettings:
    """The exporter's settings, resolved."""

    #: The traces URL (HTTP) or ``[scheme://]host:port`` (gRPC), used as is.
    endpoint: str
    protocol: str = "http/protobuf"
    compression: str = "gzip"
    headers: dict[str, str] = field(default_factory=dict)
    timeout: float = DEFAULT_TIMEOUT
    #: The resource's attributes: service.name, service.version and OTEL_RESOURCE_ATTRIBUTES.
    resource: dict[str, str] = field(default_factory=dict)
    #: gRPC only: plaintext rather than TLS (an http:// endpoint, or OTEL_..._INSECURE=true).
    insecure: bool = False
    #: Where batches are encoded: "process" or "thread".
    encoder: str = "process"

    @property
    def grpc_target(self) -> str:
        """``host:port`` of a gRPC endpoint, without its scheme."""
        if "://" in self.endpoint:
            return urlsplit(self.endpoint).netloc
        return self.endpoint


def parse_pairs(text: str, variable: str) -> dict[str, str]:
    """``k=v,k2=v2`` (the W3C baggage format the spec names for headers and resource
    attributes), keys and values URL-decoded. A malformed entry is skipped with a warning."""
    pairs: dict[str, str] = {}
    for entry in text.split(","):
        if not entry.strip():
            continue
        key, sep, value = entry.partition("=")
        key = unquote(key.strip())
        if not sep or not key:
            log.warning("%s: ignoring %r (not key=value)", variable, entry.strip())
            continue
        pairs[key] = unquote(value.strip())
    return pairs


def _env(env: Mapping[str, str], name: str) -> tuple[str, str] | None:
    """The traces-specific variable, else the general one: (variable, value), or None."""
    for variable in (f"OTEL_EXPORTER_OTLP_TRACES_{name}", f"OTEL_EXPORTER_OTLP_{name}"):
        value = env.get(variable, "").strip()
        if value:
            return variable, value
    return None


def _choice(
    configured: str | None, env: Mapping[str, str], name: str, allowed: tuple[str, ...]
) -> str:
    if configured is not None:
        return configured
    found = _env(env, name)
    if found is None:
        return allowed[0]
    variable, value = found
    if value.lower() not in allowed:
        raise ConfigError(f"{variable}={value!r}: expected one of {', '.join(allowed)}")
    return value.lower()


def _endpoint(configured: str | None, env: Mapping[str, str], protocol: str) -> str | None:
    if configured:
        return configured
    specific = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    if specific:
        return specific
    base = env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    if not base:
        return None
    if protocol == "grpc":
        return base
    return base.rstrip("/") + "/v1/traces"  # the spec: the signal's path, relative to the base


def _timeout(configured: float | None, env: Mapping[str, str]) -> float:
    if configured is not None:
        return configured
    found = _env(env, "TIMEOUT")
    if found is None:
        return DEFAULT_TIMEOUT
    variable, value = found
    try:
        milliseconds = float(value)
    except ValueError:
        milliseconds = -1.0
    if milliseconds <= 0:
        raise ConfigError(f"{variable}={value!r}: expected a positive number of milliseconds")
    return milliseconds / 1000


def _insecure(endpoint: str, env: Mapping[str, str]) -> bool:
    scheme = urlsplit(endpoint).scheme if "://" in endpoint else ""
    if scheme in ("http", "https"):
        return scheme == "http"
    found = _env(env, "INSECURE")
    return found is not None and found[1].lower() == "true"


def _resource(configured: str | None, env: Mapping[str, str]) -> dict[str, str]:
    given = parse_pairs(env.get("OTEL_RESOURCE_ATTRIBUTES", ""), "OTEL_RESOURCE_ATTRIBUTES")
    service = (
        configured
        or env.get("OTEL_SERVICE_NAME", "").strip()
        or given.get("service.name")
        or "stackyard"
    )
    return {"service.version": __version__, **given, "service.name": service}


def _switched_off(config: OTLPConfig, env: Mapping[str, str]) -> bool:
    """``OTEL_SDK_DISABLED=true`` or ``OTEL_TRACES_EXPORTER=none``: no export, even where the
    file names an endpoint (both are an operator's switch, as in every OpenTelemetry SDK).
    An exporter other than ``otlp`` or ``none`` is refused, not ignored."""
    disabled = env.get("OTEL_SDK_DISABLED", "").strip().lower()
    if disabled not in ("", "true", "false"):
        raise ConfigError(f"OTEL_SDK_DISABLED={disabled!r}: expected true or false")
    exporters = [e.strip().lower() for e in env.get("OTEL_TRACES_EXPORTER", "").split(",")]
    exporters = [e for e in exporters if e]
    for exporter in exporters:
        if exporter not in ("otlp", "none"):
            raise ConfigError(
                f"OTEL_TRACES_EXPORTER={exporter!r}: the gateway exports traces by OTLP only; "
                "expected otlp or none"
            )
    off = disabled == "true" or exporters == ["none"]
    if off and config.endpoint:
        variable = "OTEL_SDK_DISABLED" if disabled == "true" else "OTEL_TRACES_EXPORTER"
        log.warning(
            "OTLP export is off (%s), although observability.otlp names an endpoint", variable
        )
    return off


def resolve(config: OTLPConfig, env: Mapping[str, str]) -> OTLPSettings | None:
    """The exporter's settings, or None when no endpoint is configured anywhere (no export).

    Raises :class:`ConfigError` for a variable the spec does not allow, and for grpc without
    grpcio installed."""
    if _switched_off(config, env):
        return None
    protocol = _choice(config.protocol, env, "PROTOCOL", PROTOCOLS)
    endpoint = _endpoint(config.endpoint, env, protocol)
    if endpoint is None:
        return None
    if protocol == "grpc" and importlib.util.find_spec("grpc") is None:
        raise ConfigError(GRPC_MISSING)
    headers = dict(config.headers)
    if not headers:
        found = _env(env, "HEADERS")
        headers = parse_pairs(found[1], found[0]) if found else {}
    return OTLPSettings(
        endpoint=endpoint,
        protocol=protocol,
        compression=_choice(config.compression, env, "COMPRESSION", COMPRESSIONS),
        headers=headers,
        timeout=_timeout(config.timeout, env),
        resource=_resource(config.service_name, env),
        insecure=_insecure(endpoint, env) if protocol == "grpc" else False,
        encoder=config.encoder,
    )
