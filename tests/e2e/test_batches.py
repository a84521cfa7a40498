"""The Batch API end to end, with the official ``openai`` SDK (strict) as the client: a batch of
100 lines run by the gateway against the fake upstream, one cancelled halfway, one resumed by
a second gateway after the first stopped (no finished line runs twice), a file with bad lines,
and batches seen per team."""

from __future__ import annotations

import io
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.conftest import GatewayProcess, eventually, openai_sdk, team_key
from tests.fakes.openai_upstream import FakeOpenAI, Fault
from tests.ui.conftest import browser

pytestmark = pytest.mark.e2e
MASTER = "sk-master-batches-0123456789"


def config(fake: FakeOpenAI, database: Path, deployment: str) -> dict[str, Any]:
    return {
        "models": [
            {"name": "m", "provider": "openai-compatible", "api_base": fake.base_url(deployment)}
        ],
        "auth": {"master_key": MASTER},
        "database_url": f"sqlite:///{database}",
        "batches": {"concurrency": 2, "poll_seconds": 0.1, "lease_seconds": 3},
    }


def lines(count: int, url: str = "/v1/chat/completions") -> bytes:
    out = io.BytesIO()
    for i in range(count):
        body = {"model": "m", "messages": [{"role": "user", "content": f"question {i}"}]}
        out.write(
            json.dumps({"custom_id": f"q{i}", "method": "POST", "url": url, "body": body}).encode()
            + b"\n"
        )
    return out.getvalue()


def submit(client: openai.OpenAI, content: bytes) -> str:
    uploaded = client.files.create(file=("in.jsonl", content), purpose="batch")
    batch = client.batches.create(
        input_file_id=uploaded.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"job": "test"},
    )
    assert batch.status == "validating"
    return batch.id


def finished(client: openai.OpenAI, batch_id: str, bound: float = 120.0) -> Any:
    final: list[Any] = []

    def done() -> bool:
        batch = client.batches.retrieve(batch_id)
        final[:] = [batch]
        return batch.status in ("completed", "failed", "cancelled", "expired")

    assert eventually(done, bound=bound, every=0.1)
    return final[0]


def results(client: openai.OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    if file_id is None:
        return []
    text = client.files.content(file_id).text
    return [json.loads(line) for line in text.splitlines() if line]


def test_a_batch_of_100_lines(
    fake_openai: FakeOpenAI, gateway_factory: Any, tmp_path: Path
) -> None:
    gateway: GatewayProcess = gateway_factory(config(fake_openai, tmp_path / "b.db", "batch100"))
    key = team_key(gateway, "alpha", MASTER)
    with openai_sdk(gateway, key) as client:
        batch_id = submit(client, lines(100))
        batch = finished(client, batch_id)
        assert batch.status == "completed"
        assert batch.request_counts is not None
        assert (batch.request_counts.total, batch.request_counts.completed) == (100, 100)
        assert batch.error_file_id is None
        assert batch.completed_at is not None
        assert batch.in_progress_at is not None
        out = results(client, batch.output_file_id)
        assert [r["custom_id"] for r in out] == [f"q{i}" for i in range(100)]
        first = out[0]["response"]
        assert first["status_code"] == 200
        assert first["body"]["choices"][0]["message"]["content"] == "[batch100] echo: question 0"
        assert [b.id for b in client.batches.list().data] == [batch_id]
    assert len(fake_openai.requests_for("batch100")) == 100
    # The console's jobs page lists it with its progress, for its team only.
    with browser(gateway, key) as page:
        listing = page.get("/ui/finetune").text
    assert f"<code>{batch_id}</code>" in listing
    assert "100 / 100" in listing
    # Another team does not see the batch; the master key does.
    other = team_key(gateway, "beta", MASTER)
    with browser(gateway, other) as page:
        assert batch_id not in page.get("/ui/finetune").text
    with openai_sdk(gateway, other) as stranger:
        with pytest.raises(openai.NotFoundError):
            stranger.batches.retrieve(batch_id)
        assert stranger.batches.list().data == []
    with openai_sdk(gateway, MASTER) as master:
        assert master.batches.retrieve(batch_id).id == batch_id

    # Every line was a request of the team's key: the team's spend counts each of them.
    def counted() -> bool:
        rows = gateway_get(gateway, "/admin/spend?by=team")
        return any(row.get("team") == "alpha" and row["requests"] == 100 for row in rows)

    assert eventually(counted, bound=30)
    # The lines were not counted as interactive requests, and every one that was is settled.
    import httpx

    metrics = httpx.get(
        f"{gateway.url}/metrics", headers={"authorization": f"Bearer {MASTER}"}
    ).text
    assert re.search(r"^stackyard_requests_in_flight 0(\.0)?$", metrics, re.M), metrics[-500:]
    assert re.search(r"^stackyard_batch_lines_in_flight 0(\.0)?$", metrics, re.M)


def gateway_get(gateway: GatewayProcess, path: str) -> list[dict[str, Any]]:
    import httpx

    answer = httpx.get(f"{gateway.url}{path}", headers={"authorization": f"Bearer {MASTER}"})
    assert answer.status_code == 200, answer.text
    data = answer.json()
    rows: list[dict[str, Any]] = data.get("data", data) if isinstance(data, dict) else data
    return rows


def test_cancelled_halfway(fake_openai: FakeOpenAI, gateway_factory: Any, tmp_path: Path) -> None:
    gateway: GatewayProcess = gateway_factory(config(fake_openai, tmp_path / "c.db", "cancel"))
    fake_openai.enqueue("cancel", *[Fault.delay(0.1)] * 100)
    with openai_sdk(gateway, MASTER) as client:
        batch_id = submit(client, lines(100))

        def half() -> bool:
            counts = client.batches.retrieve(batch_id).request_counts
            return counts is not None and counts.completed >= 20

        assert eventually(half, bound=60)
        cancelling = client.batches.cancel(batch_id)
        assert cancelling.status in ("cancelling", "cancelled")
        batch = finished(client, batch_id)
        assert batch.status == "cancelled"
        assert batch.cancelled_at is not None
        assert batch.request_counts is not None
        done = batch.request_counts.completed
        assert 20 <= done < 100
        assert len(results(client, batch.output_file_id)) == done
    # Nothing ran after the cancel but the lines already in flight (2 at a time).
    assert len(fake_openai.requests_for("cancel")) <= done + 2


def test_resumed_after_a_restart_without_running_a_finished_line_twice(
    fake_openai: FakeOpenAI, gateway_factory: Any, tmp_path: Path
) -> None:
    settings = config(fake_openai, tmp_path / "r.db", "resume")
    first: GatewayProcess = gateway_factory(settings)
    fake_openai.enqueue("resume", *[Fault.delay(0.1)] * 100)
    with openai_sdk(first, MASTER) as client:
        batch_id = submit(client, lines(100))

        def some() -> bool:
            counts = client.batches.retrieve(batch_id).request_counts
            return counts is not None and counts.completed >= 20

        assert eventually(some, bound=60)
    first.stop()
    second: GatewayProcess = gateway_factory(settings)
    with openai_sdk(second, MASTER) as client:
        batch = finished(client, batch_id)
        assert batch.status == "completed"
        out = results(client, batch.output_file_id)
    assert sorted(r["custom_id"] for r in out) == sorted(f"q{i}" for i in range(100))
    asked = Counter(r.body["messages"][0]["content"] for r in fake_openai.requests_for("resume"))
    assert set(asked) == {f"question {i}" for i in range(100)}
    # Only a line in flight when the first gateway stopped may have been asked twice.
    assert sum(n - 1 for n in asked.values()) <= 2


def test_a_file_with_bad_lines_fails_the_batch_naming_them(
    fake_openai: FakeOpenAI, gateway_factory: Any, tmp_path: Path
) -> None:
    gateway: GatewayProcess = gateway_factory(config(fake_openai, tmp_path / "f.db", "bad"))
    elsewhere = {"custom_id": "e0", "method": "POST", "url": "/v1/embeddings", "body": {}}
    content = lines(2) + b"not json\n" + json.dumps(elsewhere).encode() + b"\n" + lines(1)
    with openai_sdk(gateway, MASTER) as client:
        batch = finished(client, submit(client, content))
        assert batch.status == "failed"
        assert batch.errors is not None
        assert batch.errors.data is not None
        assert [(e.line, e.code) for e in batch.errors.data] == [
            (3, "invalid_json_line"),
            (4, "mismatched_url"),
            (5, "duplicate_custom_id"),
        ]
        with pytest.raises(openai.BadRequestError) as refused:
            client.batches.create(
                input_file_id="file-nope",
                endpoint="/v1/chat/completions",
                completion_window="24h",
            )
        assert refused.value.body["param"] == "input_file_id"  # type: ignore[index]
    assert fake_openai.requests_for("bad") == []
