"""An incremental Server-Sent Events decoder for upstream streams (the WHATWG grammar)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Event:
    event: str | None
    data: str


class SSEDecoder:
    """Feed bytes as they arrive; get complete events back. Comments and ``id``/``retry`` are
    ignored; several ``data:`` lines of one event are joined with newlines."""

    def __init__(self) -> None:
        self._buffer = b""
        self._event: str | None = None
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[Event]:
        buffer = self._buffer + chunk
        events: list[Event] = []
        start = 0
        while True:
            end = buffer.find(b"\n", start)
            if end < 0:
                break
            line = buffer[start:end]
            start = end + 1
            if line.endswith(b"\r"):
                line = line[:-1]
            self._line(line.decode("utf-8"), events)
        self._buffer = buffer[start:]
        return events

    def flush(self) -> list[Event]:
        """End of stream: an event not closed by a blank line is still delivered."""
        events: list[Event] = []
        if self._buffer:
            self._line(self._buffer.decode("utf-8").rstrip("\r"), events)
            self._buffer = b""
        self._line("", events)
        return events

    def _line(self, line: str, events: list[Event]) -> None:
        if not line:
            if self._data:
                events.append(Event(self._event, "\n".join(self._data)))
            self._event = None
            self._data = []
            return
        if line.startswith(":"):
            return
        field, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event = value
