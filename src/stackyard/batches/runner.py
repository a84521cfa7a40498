"""The batch runner: each instance runs one background task that claims an unfinished batch (a
lease it renews), runs its lines that have no result yet, and writes the output and error
files once every line is done.

Each line goes through the gateway's own route for its ``url``, in process, as the key that
created the batch (its limits, budgets, guardrails, cache and traces apply; a key revoked
since fails the rest). A line starts only while fewer than ``pause_above`` interactive
requests are in flight, and at most ``concurrency`` lines run at once: a batch never takes the
capacity an interactive request needs. Cancelling stops new lines; the lines in flight finish
and are kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from stackyard.auth.admission import BACKGROUND_SCOPE
from stackyard.batches.store import ENDPOINTS, MESSAGES, BatchStore, epoch
from stackyard.server.inprocess import call_route

if TYPE_CHECKING:
    from stackyard.auth.principal import Principal
    from stackyard.config.schema import BatchesConfig
    from stackyard.finetune.files import Files
    from stackyard.server.routing import Routes
    from stackyard.store.tables.batches import BatchRecord

log = logging.getLogger("stackyard.batches")
#: Validation errors kept on a failed batch (OpenAI's ``errors.data``).
MAX_ERRORS = 100


@dataclass(slots=True)
class Line:
    index: int
    custom_id: str
    url: str
    body: dict[str, Any]


class InvalidBatch(ValueError):
    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(f"{len(errors)} invalid lines")
        self.errors = errors


def parse_lines(content: bytes, endpoint: str) -> list[Line]:
    """The input file's lines (OpenAI's batch input format), or :class:`InvalidBatch` naming
    each bad line (1-based, as OpenAI's errors count them)."""
    lines: list[Line] = []
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()

    def bad(number: int, code: str, message: str, param: str | None = None) -> None:
        if len(errors) < MAX_ERRORS:
            errors.append({"code": code, "line": number, "message": message, "param": param})

    for number, raw in enumerate(content.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            item = orjson.loads(raw)
        except orjson.JSONDecodeError:
            bad(number, "invalid_json_line", "This line is not valid JSON.")
            continue
        if not isinstance(item, dict):
            bad(number, "invalid_json_line", "A line must be a JSON object.")
            continue
        custom_id = item.get("custom_id")
        if not isinstance(custom_id, str) or not custom_id:
            bad(number, "missing_required_parameter", "custom_id is required.", "custom_id")
            continue
        if custom_id in seen:
            bad(number, "duplicate_custom_id", f"custom_id {custom_id!r} is used twice.")
            continue
        seen.add(custom_id)
        if item.get("method", "POST") != "POST":
            bad(number, "invalid_method", "Only POST is supported.", "method")
            continue
        if item.get("url") != endpoint:
            bad(
                number,
                "mismatched_url",
                f"The line's url {item.get('url')!r} is not the batch's endpoint {endpoint!r}.",
                "url",
            )
            continue
        body = item.get("body")
        if not isinstance(body, dict):
            bad(number, "missing_required_parameter", "body must be an object.", "body")
            continue
        if body.get("stream"):
            bad(number, "invalid_request", "A batch line cannot stream.", "body.stream")
            continue
        lines.append(Line(len(lines), custom_id, endpoint, body))
    if errors:
        raise InvalidBatch(errors)
    if not lines:
        raise InvalidBatch([{"code": "empty_file", "line": None, "message": "No lines."}])
    return lines


class BatchRunner:
    def __init__(
        self,
        store: BatchStore,
        files: Files,
        routes: Routes,
        config: BatchesConfig,
        *,
        principal_of: Callable[[BatchRecord], Principal | None],
        interactive: Callable[[], int],
        max_body_bytes: int,
    ) -> None:
        self.store = store
        self.files = files
        self.routes = routes
        self.config = config
        self.principal_of = principal_of
        self.interactive = interactive
        self.max_body_bytes = max_body_bytes
        self.name = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        #: Lines in flight now (for tests and /metrics).
        self.running = 0

    async def run(self) -> None:
        """Forever: claim a batch, run it, let it go."""
        while True:
            try:
                batch_id = await asyncio.to_thread(
                    self.store.claim, self.name, self.config.lease_seconds
                )
            except Exception:
                log.exception("could not look for batches to run")
                batch_id = None
            if batch_id is None:
                await asyncio.sleep(self.config.poll_seconds)
                continue
            try:
                await self.run_batch(batch_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("batch %s failed to run; it is tried again", batch_id)
                await asyncio.sleep(self.config.poll_seconds)
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(self.store.release, batch_id, self.name)

    async def run_batch(self, batch_id: str) -> None:
        store = self.store
        record = await asyncio.to_thread(store.record, batch_id)
        content = await asyncio.to_thread(self.files.content, record.input_file_id)
        try:
            lines = parse_lines(content, record.endpoint)
        except InvalidBatch as exc:
            await asyncio.to_thread(
                store.move, batch_id, "failed", errors={"object": "list", "data": exc.errors}
            )
            return
        if record.status == "validating":
            await asyncio.to_thread(store.move, batch_id, "in_progress", total=len(lines))
            record.status = "in_progress"
        status = record.status
        if status == "in_progress":
            status = await self._lines(record, lines)
        if status == "cancelling":
            await self._finalize(record, "cancelled")
        elif status == "expired":
            await self._finalize(record, "expired")
        elif status in ("in_progress", "finalizing"):
            await asyncio.to_thread(store.move, batch_id, "finalizing")
            await self._finalize(record, "completed")

    async def _lines(self, record: BatchRecord, lines: list[Line]) -> str:
        """Run the lines with no result yet; the batch's status when they stop (``cancelling``
        or ``expired`` if they stopped early)."""
        done = await asyncio.to_thread(self.store.done_lines, record.id)
        todo = [line for line in lines if line.index not in done]
        principal = self.principal_of(record)
        expires = epoch(record.expires_at) or 0
        status = "in_progress"
        slots = asyncio.Semaphore(self.config.concurrency)
        tasks: set[asyncio.Task[None]] = set()
        last_renewal = time.monotonic()
        try:
            for line in todo:
                if time.monotonic() - last_renewal > self.config.lease_seconds / 3:
                    last_renewal = time.monotonic()
                    renewed = await asyncio.to_thread(
                        self.store.renew, record.id, self.name, self.config.lease_seconds
                    )
                    if renewed is None:  # another instance holds it now
                        status = "lost"
                        break
                    status = renewed
                    if status != "in_progress":
                        break
                if time.time() > expires:
                    status = "expired"
                    break
                await slots.acquire()
                await self._wait_for_room()
                task = asyncio.ensure_future(self._line(record, line, principal, slots))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        finally:
            # However the loop ended (a store error included), the lines in flight finish and
            # are kept before the batch is let go: run again at once, it would otherwise start
            # them a second time, beside themselves.
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
        if status == "in_progress":  # a cancel may have come while the last lines ran
            status = (await asyncio.to_thread(self.store.record, record.id)).status
        return status

    async def _wait_for_room(self) -> None:
        # A count the request path keeps without any event to wait on: read it every 50 ms.
        while self.interactive() >= self.config.pause_above:  # noqa: ASYNC110
            await asyncio.sleep(0.05)

    async def _line(
        self,
        record: BatchRecord,
        line: Line,
        principal: Principal | None,
        slots: asyncio.Semaphore,
    ) -> None:
        self.running += 1
        try:
            if principal is None:
                status, body, request_id = (
                    401,
                    {
                        "error": {
                            "message": "The key that created this batch is no longer valid.",
                            "type": "invalid_request_error",
                            "param": None,
                            "code": "invalid_api_key",
                        }
                    },
                    "",
                )
            else:
                status, body, request_id = await self.call(line, principal, record.id)
            result = {
                "id": f"batch_req_{secrets.token_hex(12)}",
                "custom_id": line.custom_id,
                "response": {"status_code": status, "request_id": request_id, "body": body},
                "error": None,
            }
            await asyncio.to_thread(
                self.store.finish_line, record.id, line.index, status == 200, result
            )
        except Exception:
            log.exception("batch %s line %d", record.id, line.index + 1)
        finally:
            self.running -= 1
            slots.release()

    async def call(self, line: Line, principal: Principal, batch_id: str) -> tuple[int, Any, str]:
        """One line through the gateway's route for it, in process: (status, body, request
        id)."""
        return await call_route(
            self.routes,
            "POST",
            line.url,
            principal,
            payload=orjson.dumps(line.body),
            headers=[(b"x-stackyard-batch", urllib.parse.quote(batch_id).encode())],
            scope={BACKGROUND_SCOPE: True},
            max_body_bytes=self.max_body_bytes,
        )

    async def _finalize(self, record: BatchRecord, status: str) -> None:
        if record.endpoint == MESSAGES:  # its results are read from the store, line by line
            await asyncio.to_thread(self.store.move, record.id, status)
            return
        results = await asyncio.to_thread(self.store.results, record.id)
        good = b"".join(r.encode() + b"\n" for _, ok, r in results if ok)
        bad = b"".join(r.encode() + b"\n" for _, ok, r in results if not ok)
        fields: dict[str, Any] = {}
        if good:
            made = await asyncio.to_thread(
                self.files.create, f"{record.id}_output.jsonl", "batch_output", good, record.team_id
            )
            fields["output_file_id"] = made["id"]
        if bad:
            made = await asyncio.to_thread(
                self.files.create, f"{record.id}_error.jsonl", "batch_output", bad, record.team_id
            )
            fields["error_file_id"] = made["id"]
        await asyncio.to_thread(self.store.move, record.id, status, **fields)


__all__ = ["BACKGROUND_SCOPE", "ENDPOINTS", "BatchRunner", "InvalidBatch", "Line", "parse_lines"]
