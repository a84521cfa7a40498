"""The batch runner's parts that need no server: reading an input file, and waiting for
interactive traffic to leave room."""

from __future__ import annotations

import asyncio
import json
from typing import Any, cast

import pytest

from stackyard.batches.runner import BatchRunner, InvalidBatch, parse_lines
from stackyard.config.schema import BatchesConfig

URL = "/v1/chat/completions"


def line(custom_id: str, **extra: Any) -> bytes:
    item = {"custom_id": custom_id, "method": "POST", "url": URL, "body": {"model": "m"}}
    item.update(extra)
    return json.dumps(item).encode() + b"\n"


def test_lines_are_read_in_order_and_blank_lines_skipped() -> None:
    parsed = parse_lines(line("a") + b"\n" + line("b"), URL)
    assert [(p.index, p.custom_id) for p in parsed] == [(0, "a"), (1, "b")]


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"{nope\n", "invalid_json_line"),
        (b"[1]\n", "invalid_json_line"),
        (line("a") + line("a"), "duplicate_custom_id"),
        (line("a", method="GET"), "invalid_method"),
        (line("a", url="/v1/embeddings"), "mismatched_url"),
        (line("a", body=[]), "missing_required_parameter"),
        (line("a", body={"model": "m", "stream": True}), "invalid_request"),
        (b"\n", "empty_file"),
    ],
)
def test_a_bad_file_names_its_bad_lines(content: bytes, code: str) -> None:
    with pytest.raises(InvalidBatch) as bad:
        parse_lines(content, URL)
    assert bad.value.errors[-1]["code"] == code


def test_a_line_waits_while_interactive_requests_fill_the_room() -> None:
    busy = [5]
    runner = BatchRunner(
        cast(Any, None),
        cast(Any, None),
        cast(Any, None),
        BatchesConfig(pause_above=3),
        principal_of=lambda record: None,
        interactive=lambda: busy[0],
        max_body_bytes=1024,
    )

    async def run() -> None:
        waiting = asyncio.ensure_future(runner._wait_for_room())
        await asyncio.sleep(0.2)
        assert not waiting.done()  # 5 in flight, room below 3
        busy[0] = 3
        await asyncio.sleep(0.2)
        assert not waiting.done()
        busy[0] = 2
        await asyncio.wait_for(waiting, 2)

    asyncio.run(run())
