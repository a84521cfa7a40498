"""Turning an upstream's HTTP failure into an :class:`UpstreamError` the router understands."""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import Mapping
from typing import Any

import aiohttp
import orjson

from stackyard.gateway.providers.base import ErrorKind, UpstreamError


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait, from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date)."""
    value = headers.get("retry-after-ms")
    if value:
        try:
            return max(0.0, float(value) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def kind_for_status(status: int) -> ErrorKind:
    if status == 429:
        return "rate_limited"
    if status in (408, 409) or status >= 500:
        return "server" if status != 408 else "timeout"
    if status in (401, 403, 404):
        return "deployment"
    return "client"


def error_fields(raw: bytes) -> tuple[str | None, dict[str, Any]]:
    """The message and fields of an error body, whatever its vendor's shape."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        text = raw.decode("utf-8", "replace").strip()
        return (text[:500] or None), {}
    if isinstance(data, dict):
        error = data.get("error", data)
        if isinstance(error, dict):
            message = error.get("message")
            return (str(message) if message is not None else None), error
        if isinstance(error, str):
            return error, {}
    return None, {}


def from_response(
    status: int, headers: Mapping[str, str], raw: bytes, *, upstream: str
) -> UpstreamError:
    """Map a non-2xx upstream response onto an :class:`UpstreamError`."""
    message, fields = error_fields(raw)
    kind = kind_for_status(status)
    should_retry = headers.get("x-should-retry")
    if should_retry == "false" and kind in ("server", "rate_limited", "timeout"):
        kind = "deployment"
    elif should_retry == "true" and kind == "client":
        kind = "server"
    code = fields.get("code")
    param = fields.get("param")
    error_type = fields.get("type")
    return UpstreamError(
        kind,
        message or f"{upstream} returned HTTP {status}",
        status=status,
        retry_after=parse_retry_after(headers),
        error_type=str(error_type) if isinstance(error_type, str) else None,
        param=str(param) if isinstance(param, str) else None,
        code=str(code) if isinstance(code, str | int) else None,
    )


def from_exception(exc: BaseException, *, upstream: str) -> UpstreamError:
    """Map a client-side failure (timeout, refused, reset, bad payload) onto an UpstreamError."""
    if isinstance(exc, UpstreamError):
        return exc
    if isinstance(exc, asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        return UpstreamError("timeout", f"{upstream} did not answer in time")
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ServerDisconnectedError):
        return UpstreamError("connection", f"{upstream} closed the connection: {exc}")
    if isinstance(exc, aiohttp.ClientError | OSError):
        return UpstreamError("connection", f"cannot reach {upstream}: {exc}")
    if isinstance(exc, orjson.JSONDecodeError | UnicodeDecodeError):
        return UpstreamError("invalid_response", f"{upstream} sent invalid JSON: {exc}")
    raise exc
