"""A stream, from the routed deployment's first event to the client's last byte, for every
door: the stream invariant lives here. A stream ends in exactly one of two ways: the door's
terminal event (then its trailer, ``[DONE]`` on chat completions), or an error event in the
door's format. An upstream stream that ends without its terminal event is an error."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from stackyard.gateway.accounting import Settlement
from stackyard.gateway.pipeline.exchange import Event, Events, Exchange
from stackyard.gateway.providers.base import UpstreamError


async def drive(
    ex: Exchange,
    first: Event,
    events: Events,
    idle: float,
    source: str,
    settle: Settlement,
    record: list[Any] | None,
) -> AsyncIterator[bytes]:
    """Encode events as the door's SSE; ``record`` keeps a copy of each as it came (for the
    cache). A failure after the first byte ends the stream with the door's error event."""
    door = ex.door
    settle.first_chunk()
    ended = False
    try:
        event = first
        while True:
            door.account(ex, event, settle)
            if record is not None:
                record.append(event)
            if door.terminal(event):
                ended = True
            data = door.encode(ex, event)
            if data is not None:
                yield data
            try:
                async with asyncio.timeout(idle):
                    event = await anext(events)
            except StopAsyncIteration:
                break
        if not ended:
            raise UpstreamError("invalid_response", f"{source} ended the stream before its end")
        trailer = door.end(ex)
        if trailer:
            yield trailer
        settle.complete = True
    except UpstreamError as exc:
        settle.failed(502, "upstream_error", exc.message)
        yield door.error_event(ex, 502, "upstream_error", exc.message, exc.error_type)
    except TimeoutError:
        message = f"{source} sent nothing for {idle:g} seconds; the stream was ended"
        settle.failed(504, "upstream_timeout", message)
        yield door.error_event(ex, 504, "upstream_timeout", message, None)
    finally:
        await events.aclose()
        await settle.done()
