"""One request on its way through the pipeline: what its door parsed, and what the stages
learned about it on the way."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from stackyard.gateway.router import RouteStats

if TYPE_CHECKING:
    from stackyard.auth.admission import Ticket
    from stackyard.auth.principal import Principal
    from stackyard.gateway.pipeline.door import Door
    from stackyard.server.http import Request

Body = dict[str, Any]
#: A stream's events in the door's own shape (a chunk for chat completions, a named event for
#: Messages); the stages change them through the door, the door encodes them.
Event = Any
Events = AsyncGenerator[Event, None]


@dataclass(slots=True)
class Exchange:
    door: Door
    request: Request
    #: The request in its door's shape, as the stages have changed it so far.
    body: Body
    principal: Principal
    #: Our own fields, taken off the body before anything can send them upstream: ``prompt``,
    #: ``cache``, ``rag``.
    options: dict[str, Any] = field(default_factory=dict)
    stream: bool = False
    ticket: Ticket | None = None
    stats: RouteStats = field(default_factory=RouteStats)
    #: Response headers the stages add (on an answer; an error carries its own).
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    #: RAG's passages, returned with the answer.
    citations: list[dict[str, Any]] | None = None
    #: A stage's own state for this request, by the stage's name.
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def admitted(self) -> Ticket:
        assert self.ticket is not None, "a stage ran before admission"
        return self.ticket


@dataclass(slots=True)
class Served:
    """An answer a stage gives without calling upstream (the cache's): whole, or the events
    of a stream, in the door's shape, and its price."""

    answer: Body | None = None
    events: list[Event] | None = None
    usage: dict[str, Any] | None = None
    cost: float = 0.0


class Inbound(Protocol):
    """What a stage does to the answer of the attempt it changed the request of (PII
    restoration undoes that attempt's redaction)."""

    def answer(self, answer: Body) -> Body: ...

    def events(self, events: Events) -> Events: ...
