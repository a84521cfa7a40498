"""The pipeline: admission, then the stages in one fixed order around the routed call, then
settlement, which runs on every outcome (an answer, an error, a bug, a client gone)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from stackyard.errors import APIError
from stackyard.gateway.accounting import Settlement, cost_header
from stackyard.gateway.headers import route_headers, with_route_headers
from stackyard.gateway.pipeline.exchange import Body, Event, Events, Exchange, Inbound, Served
from stackyard.gateway.pipeline.stage import Stage, overrides
from stackyard.gateway.pipeline.stream import drive
from stackyard.gateway.providers.base import UpstreamError
from stackyard.gateway.router import Routed, RouteStats
from stackyard.server.streaming import EventStream

if TYPE_CHECKING:
    from stackyard.gateway.deployment import Deployment
    from stackyard.gateway.pipeline.door import Door
    from stackyard.gateway.service import Gateway
    from stackyard.server.http import Request, Response


class Chain:
    """A door's stages, by hook: only those that override it."""

    __slots__ = ("after", "before", "outbound", "prepare", "settled")

    def __init__(self, stages: Sequence[Stage]) -> None:
        self.prepare = [s for s in stages if overrides(s, "prepare")]
        self.before = [s for s in stages if overrides(s, "before")]
        self.outbound = [s for s in stages if overrides(s, "outbound")]
        self.after = [s for s in stages if overrides(s, "after")]
        self.settled = [s for s in stages if overrides(s, "settled")]


class Pipeline:
    def __init__(self, gateway: Gateway, stages: Sequence[Stage]) -> None:
        self.gateway = gateway
        self.stages = list(stages)
        self._chains: dict[str, Chain] = {}

    def chain(self, door: Door) -> Chain:
        chain = self._chains.get(door.endpoint)
        if chain is None:
            chain = Chain([s for s in self.stages if s.name in door.stages])
            self._chains[door.endpoint] = chain
        return chain

    async def handle(self, door: Door, request: Request) -> Response | EventStream:
        """One request through ``door``: parsing, admission, the stages, the call, the answer
        (or the error, in the door's shape)."""
        governance = self.gateway.governance
        chain = self.chain(door)
        ex: Exchange | None = None
        try:
            body = await request.json_object()
            # Nothing but parsing before the key is checked.
            principal = governance.authenticate(request)
            options = {name: body.pop(name) for name in door.options if name in body}
            ex = Exchange(door, request, body, principal, options)
            await door.parse(ex)
            for stage in chain.prepare:
                await stage.prepare(ex)
            ex.stream = door.validate(ex)
            ex.ticket = await governance.admit(
                request, ex.body, endpoint=door.endpoint, principal=principal
            )
        except APIError as exc:
            return door.refuse(exc, ex)
        return await self._admitted(ex, chain)

    async def _admitted(self, ex: Exchange, chain: Chain) -> Response | EventStream:
        governance = self.gateway.governance
        ticket = ex.admitted
        door = ex.door
        try:
            for stage in chain.before:
                served = await stage.before(ex)
                if served is not None:
                    return await self._served(ex, served)
            if ex.stream:
                return await self._stream(ex, chain)
            routed = await self.call(ex, ex.body)
            for stage in chain.after:
                routed = await stage.after(ex, routed, self)
        except APIError as exc:
            # What failed calls used still counts (an answer that was not the JSON asked for).
            await governance.finish(
                ticket,
                status=exc.status,
                usage=getattr(exc, "usage", None),
                deployment=getattr(exc, "deployment", None),
                stats=ex.stats,
                error=exc,
            )
            return door.refuse(with_route_headers(exc, ex.request, ex.stats), ex)
        except BaseException as exc:  # a bug or a cancellation: nothing it reserved stays held
            await governance.abandon(ticket, exc, ex.stats)
            raise
        answer = routed.result
        usage = door.usage(answer)
        cost = await governance.finish(
            ticket,
            status=200,
            usage=usage,
            deployment=routed.deployment,
            stats=ex.stats,
            response=door.summary(answer) if ticket.trace is not None else None,
        )
        for stage in chain.settled:
            stage.settled(ex, cost, usage, answer, None)
        if ex.citations is not None:
            answer = {**answer, "citations": ex.citations}
        headers = [
            *route_headers(ex.request, ex.stats),
            *ticket.headers,
            *ex.headers,
            cost_header(cost),
        ]
        return door.render(ex, answer, headers)

    async def call(self, ex: Exchange, body: Body, stats: RouteStats | None = None) -> Routed[Body]:
        """Route ``body`` and call: each attempt's request through the stages' outbound hooks,
        its answer back through theirs in reverse."""
        door = ex.door
        outbound = self.chain(door).outbound

        async def attempt(deployment: Deployment) -> Body:
            sent, inbound = await _outbound(outbound, ex, deployment, body)
            answer = await door.call(ex, deployment, sent)
            for stage in reversed(inbound):
                answer = stage.answer(answer)
            return answer

        return await self.gateway.router.run(
            body["model"],
            attempt,
            stats=stats or ex.stats,
            supports=lambda d: door.supports(d, False),
            operation=door.operation,
        )

    async def _stream(self, ex: Exchange, chain: Chain) -> EventStream:
        door = ex.door
        outbound = chain.outbound

        async def attempt(deployment: Deployment) -> tuple[Event, Events]:
            sent, inbound = await _outbound(outbound, ex, deployment, ex.body)
            events = door.call_stream(ex, deployment, sent)
            for stage in reversed(inbound):
                events = stage.events(events)
            try:
                first = await anext(events)
            except StopAsyncIteration:
                raise UpstreamError(
                    "invalid_response", f"deployment {deployment.id} sent an empty stream"
                ) from None
            except BaseException:
                await events.aclose()
                raise
            return first, events

        routed = await self.gateway.router.run(
            ex.body["model"],
            attempt,
            stats=ex.stats,
            stream=True,
            supports=lambda d: door.supports(d, True),
            operation="streaming",
        )
        first, events = routed.result
        ticket = ex.admitted
        settle = Settlement(
            self.gateway.governance, ticket, routed.deployment, ex.stats, door.capture()
        )
        record = self._record(ex, chain, settle)
        source = f"deployment {routed.deployment.id}"
        headers = [*route_headers(ex.request, ex.stats), *ticket.headers, *ex.headers]
        idle = self.gateway.config.router.stream_idle_timeout
        stream = drive(ex, door.first(ex, first), events, idle, source, settle, record)
        return EventStream(stream, headers)

    def _record(self, ex: Exchange, chain: Chain, settle: Settlement) -> list[Any] | None:
        """A list the stream's events are kept in, if a stage settles with them."""
        wanting = [s for s in chain.settled if s.records(ex)]
        if not wanting:
            return None
        record: list[Any] = []

        def complete(cost: float) -> None:
            for stage in wanting:
                stage.settled(ex, cost, settle.usage, None, record)

        settle.on_complete = complete
        return record

    async def _served(self, ex: Exchange, served: Served) -> Response | EventStream:
        """An answer without an upstream call (from the cache), charged at its own price."""
        door = ex.door
        governance = self.gateway.governance
        ticket = ex.admitted
        headers = [*ticket.headers, *ex.headers]
        if ex.stream:
            assert served.events is not None
            settle = Settlement(
                governance, ticket, None, None, door.capture(), cache_hit=True, cost=served.cost
            )
            events = served.events

            async def rest() -> Events:
                for event in events[1:]:
                    yield event

            idle = self.gateway.config.router.stream_idle_timeout
            first = door.first(ex, events[0])
            return EventStream(drive(ex, first, rest(), idle, "the cache", settle, None), headers)
        assert served.answer is not None
        answer = served.answer
        cost = await governance.finish(
            ticket,
            status=200,
            usage=served.usage,
            deployment=None,
            cache_hit=True,
            cost=served.cost,
            response=door.summary(answer) if ticket.trace is not None else None,
        )
        if ex.citations is not None:
            answer = {**answer, "citations": ex.citations}
        return door.render(ex, answer, [*headers, cost_header(cost)])


async def _outbound(
    stages: list[Stage], ex: Exchange, deployment: Deployment, body: Body
) -> tuple[Body, list[Inbound]]:
    inbound: list[Inbound] = []
    for stage in stages:
        body, back = await stage.outbound(ex, deployment, body)
        if back is not None:
            inbound.append(back)
    return body, inbound
