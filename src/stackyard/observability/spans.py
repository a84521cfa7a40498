"""Spans and the trace of one request, built in memory as the request passes the gateway.

Times are epoch nanoseconds (OpenTelemetry's unit); ids are random hex, 32 digits for a trace
and 16 for a span, as W3C Trace Context and OTLP want them.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

_random = random.Random()

INTERNAL, SERVER, CLIENT = 1, 2, 3  # OTLP SpanKind


def new_trace_id() -> str:
    return f"{_random.getrandbits(128) or 1:032x}"


def new_span_id() -> str:
    return f"{_random.getrandbits(64) or 1:016x}"


@dataclass(slots=True)
class Span:
    name: str
    span_id: str
    parent_id: str | None
    start_ns: int
    end_ns: int = 0
    kind: int = INTERNAL
    status: str = "ok"  # or "error"
    status_message: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    #: (name, epoch ns, attributes)
    events: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)

    def fail(self, message: str, error_type: str | None = None) -> None:
        self.status = "error"
        self.status_message = message
        if error_type:
            self.attributes["error.type"] = error_type


@dataclass(slots=True)
class RequestTrace:
    """One gateway request: its root span, the spans below it, and what the client said
    about it (trace and session ids, metadata, tags)."""

    request_id: str
    trace_id: str
    root: Span
    endpoint: str
    model: str
    body: dict[str, Any]
    session_id: str | None = None
    metadata: dict[str, Any] | None = None
    tags: list[str] | None = None
    stream: bool = False
    spans: list[Span] = field(default_factory=list)
    #: Set once the first chunk of a stream is sent (epoch ns).
    first_chunk_ns: int | None = None
    #: The response as the client saw it (a whole body, or a stream's assembled text).
    response: dict[str, Any] | None = None
    finish_reasons: list[str] | None = None
    response_model: str | None = None
    prompt_name: str | None = None
    prompt_version: int | None = None
    #: A cache hit's tier ("exact" or "semantic"), and what it saved: the first answer's
    #: upstream cost less the hit's price.
    cache_tier: str | None = None
    cache_saved_usd: float = 0.0
    #: What the PII rail found in the request (value: kind), tagger's finds included: the
    #: stored bodies are redacted of these too, not of the patterns' finds alone.
    private: dict[str, str] | None = None
    #: Set when the policy asks the stored bodies be redacted by the PII detectors though the
    #: request left unredacted: called in the writer's thread with the bodies' strings, it
    #: returns what it finds (value: kind), added to ``private``.
    find_private: Callable[[list[str]], dict[str, str]] | None = None

    def child(self, name: str, start_ns: int, end_ns: int | None = None, **attributes: Any) -> Span:
        span = Span(
            name,
            new_span_id(),
            self.root.span_id,
            start_ns,
            end_ns if end_ns is not None else time.time_ns(),
            attributes=attributes,
        )
        self.spans.append(span)
        return span

    def all_spans(self) -> list[Span]:
        return [self.root, *self.spans]
