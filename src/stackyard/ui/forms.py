"""Small helpers the console's pages share: reading a posted form, and reading the JSON the
gateway's APIs answer with (lists, error messages, numbers from a query)."""

from __future__ import annotations

import datetime as dt
import urllib.parse
from typing import Any

from stackyard.server.http import Response

HTML = b"text/html; charset=utf-8"


def redirect(location: str, *headers: tuple[bytes, bytes]) -> Response:
    return Response(303, b"", [(b"location", location.encode()), *headers], HTML)


def form(raw: bytes) -> dict[str, str]:
    """A posted ``application/x-www-form-urlencoded`` body (the last value of each field)."""
    parsed = urllib.parse.parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
    return {name: values[-1] for name, values in parsed.items()}


def message(answer: Any) -> str:
    """The message of an API's error answer."""
    if isinstance(answer, dict) and isinstance(answer.get("error"), dict):
        return str(answer["error"].get("message", "refused"))
    return "refused"


def rows(answer: Any) -> list[dict[str, Any]]:
    """The objects of a list answer (``{"data": [...]}`` or a bare list)."""
    if isinstance(answer, dict) and isinstance(answer.get("data"), list):
        answer = answer["data"]
    return [row for row in answer if isinstance(row, dict)] if isinstance(answer, list) else []


def number(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() else None


def quoted(name: str) -> str:
    return urllib.parse.quote(name, safe="")


def stamp(value: Any) -> str:
    """Epoch seconds as a UTC time people read ("" for none: the APIs' null or 0)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return ""
    return dt.datetime.fromtimestamp(value, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
