"""What a client says about a request's place in its own traces: W3C ``traceparent``, or
``x-stackyard-trace-id`` and ``x-stackyard-session-id``, plus ``x-stackyard-metadata`` (a JSON
object) and ``x-stackyard-tags`` (comma-separated). A malformed header is a 400 naming it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from stackyard.errors import invalid_request
from stackyard.server.http import Request

TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
HEX32 = re.compile(r"^[0-9a-f]{32}$")
MAX_METADATA_BYTES = 8192
MAX_TAGS = 20
MAX_TAG_LENGTH = 100
MAX_SESSION_LENGTH = 200


@dataclass(frozen=True, slots=True)
class ClientContext:
    trace_id: str | None = None
    parent_span_id: str | None = None
    session_id: str | None = None
    metadata: dict[str, Any] | None = None
    tags: list[str] | None = None


NONE = ClientContext()


def _header(request: Request, name: bytes) -> str | None:
    value = request.header(name)
    return value.decode("latin-1").strip() if value else None


def parse_traceparent(value: str) -> tuple[str, str] | None:
    """(trace id, parent span id) of a valid ``traceparent``; None for an invalid one (which
    W3C Trace Context says to ignore, starting a new trace)."""
    match = TRACEPARENT.match(value.lower())
    if match is None or match[1] == "ff":
        return None
    trace_id, parent = match[2], match[3]
    if trace_id == "0" * 32 or parent == "0" * 16:
        return None
    return trace_id, parent


def parse_trace_id(value: str) -> str:
    """A 32-digit hex id, or a UUID (its dashes dropped)."""
    candidate = value.lower().replace("-", "")
    if not HEX32.match(candidate) or candidate == "0" * 32:
        raise invalid_request(
            f"x-stackyard-trace-id must be 32 hex digits or a UUID, not '{value[:80]}'",
            param="x-stackyard-trace-id",
            code="invalid_header",
        )
    return candidate


def client_context(request: Request) -> ClientContext:
    traceparent = _header(request, b"traceparent")
    explicit = _header(request, b"x-stackyard-trace-id")
    session = _header(request, b"x-stackyard-session-id")
    raw_metadata = _header(request, b"x-stackyard-metadata")
    raw_tags = _header(request, b"x-stackyard-tags")
    if not (traceparent or explicit or session or raw_metadata or raw_tags):
        return NONE
    trace_id = parent = None
    if explicit:
        trace_id = parse_trace_id(explicit)
    elif traceparent:
        parsed = parse_traceparent(traceparent)
        if parsed is not None:
            trace_id, parent = parsed
    if session is not None and len(session) > MAX_SESSION_LENGTH:
        raise invalid_request(
            f"x-stackyard-session-id is longer than {MAX_SESSION_LENGTH} characters",
            param="x-stackyard-session-id",
            code="invalid_header",
        )
    return ClientContext(
        trace_id, parent, session or None, _metadata(raw_metadata), _tags(raw_tags)
    )


def _metadata(raw: str | None) -> dict[str, Any] | None:
    if not raw:
        return None
    problem = None
    if len(raw) > MAX_METADATA_BYTES:
        problem = f"is larger than {MAX_METADATA_BYTES} bytes"
    else:
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError:
            problem = "is not valid JSON"
        else:
            if isinstance(value, dict):
                return value
            problem = "must be a JSON object"
    raise invalid_request(
        f"x-stackyard-metadata {problem}", param="x-stackyard-metadata", code="invalid_header"
    )


def _tags(raw: str | None) -> list[str] | None:
    if not raw:
        return None
    tags = [t.strip() for t in raw.split(",") if t.strip()]
    if len(tags) > MAX_TAGS or any(len(t) > MAX_TAG_LENGTH for t in tags):
        raise invalid_request(
            f"x-stackyard-tags: at most {MAX_TAGS} tags of {MAX_TAG_LENGTH} characters each",
            param="x-stackyard-tags",
            code="invalid_header",
        )
    return tags or None
