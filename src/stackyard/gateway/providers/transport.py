"""The HTTP exchanges every HTTP provider makes: a JSON request answered by a JSON object, and
a JSON request answered by Server-Sent Events. Failures become :class:`UpstreamError`."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import orjson

from stackyard.gateway.providers import errors
from stackyard.gateway.providers.base import Body, UpstreamError
from stackyard.gateway.providers.http import HttpClient
from stackyard.gateway.providers.sse import Event, SSEDecoder


async def post_json(
    http: HttpClient, url: str, payload: bytes, headers: dict[str, str], *, upstream: str
) -> Body:
    try:
        async with http.session.post(url, data=payload, headers=headers) as response:
            raw = await response.read()
            if response.status >= 400:
                raise errors.from_response(
                    response.status, response.headers, raw, upstream=upstream
                )
        data: Any = orjson.loads(raw)
    except Exception as exc:
        raise errors.from_exception(exc, upstream=upstream) from exc
    if not isinstance(data, dict):
        raise UpstreamError("invalid_response", f"{upstream} sent a non-object JSON body")
    return data


async def post_events(
    http: HttpClient, url: str, payload: bytes, headers: dict[str, str], *, upstream: str
) -> AsyncGenerator[Event, None]:
    """The response's SSE events as they arrive (read to the end, so the connection is
    reused). A JSON body where a stream was expected is the upstream's error."""
    try:
        response = await http.session.post(url, data=payload, headers=headers)
    except Exception as exc:
        raise errors.from_exception(exc, upstream=upstream) from exc
    try:
        if response.status >= 400:
            raw = await response.read()
            raise errors.from_response(response.status, response.headers, raw, upstream=upstream)
        content_type = response.headers.get("content-type", "")
        if "text/event-stream" not in content_type:
            raw = await response.read()
            message, _ = errors.error_fields(raw)
            if message:
                raise UpstreamError("server", f"{upstream}: {message}")
            raise UpstreamError(
                "invalid_response",
                f"{upstream} answered a stream request with {content_type or 'no content type'}",
            )
        decoder = SSEDecoder()
        async for piece in response.content.iter_any():
            for event in decoder.feed(piece):
                yield event
        for event in decoder.flush():
            yield event
    except UpstreamError:
        raise
    except Exception as exc:
        raise errors.from_exception(exc, upstream=upstream) from exc
    finally:
        response.release()


def event_object(data: str, upstream: str) -> Body:
    """An event's data as a JSON object."""
    try:
        value: Any = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise UpstreamError(
            "invalid_response", f"{upstream} sent an invalid stream event"
        ) from None
    if not isinstance(value, dict):
        raise UpstreamError("invalid_response", f"{upstream} sent a non-object stream event")
    return value
