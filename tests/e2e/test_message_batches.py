"""Anthropic's Message Batches API end to end, with the official ``anthropic`` SDK (strict) as
the client: a batch run by the gateway through the ``/v1/messages`` door (for a model served in
OpenAI's format, so every request is translated), its results, a cancelled batch, paging,
teams, deletion and the create request's errors."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest

from tests.conftest import GatewayProcess, eventually, openai_sdk, team_key
from tests.e2e.doors import anthropic_sdk
from tests.fakes.openai_upstream import FakeOpenAI, Fault

pytestmark = pytest.mark.e2e
MASTER = "sk-master-msgbatches-0123456"


@pytest.fixture(scope="module")
def gateway(
    fake_openai: FakeOpenAI, gateway_factory: Any, tmp_path_factory: pytest.TempPathFactory
) -> GatewayProcess:
    database = tmp_path_factory.mktemp("msgbatches") / "b.db"
    gw: GatewayProcess = gateway_factory(
        {
            "models": [
                {
                    "name": "m",
                    "provider": "openai-compatible",
                    "api_base": fake_openai.base_url("msgbatch"),
                },
                {
                    "name": "slow",
                    "provider": "openai-compatible",
                    "api_base": fake_openai.base_url("msgbatch-slow"),
                },
            ],
            "auth": {"master_key": MASTER},
            "database_url": f"sqlite:///{database}",
            "batches": {"concurrency": 2, "poll_seconds": 0.1, "lease_seconds": 3},
        }
    )
    return gw


def streaming() -> dict[str, Any]:
    return {"custom_id": "s", "params": {**requests(1)[0]["params"], "stream": True}}


def requests(count: int, model: str = "m") -> list[Any]:
    return [
        {
            "custom_id": f"q{i}",
            "params": {
                "model": model,
                "max_tokens": 20,
                "messages": [{"role": "user", "content": f"question {i}"}],
            },
        }
        for i in range(count)
    ]


def ended(client: anthropic.Anthropic, batch_id: str) -> Any:
    final: list[Any] = []

    def done() -> bool:
        final[:] = [client.messages.batches.retrieve(batch_id)]
        return bool(final[0].processing_status == "ended")

    assert eventually(done, bound=120, every=0.1)
    return final[0]


def test_a_batch_runs_each_request_through_the_messages_door(
    gateway: GatewayProcess, fake_openai: FakeOpenAI
) -> None:
    key = team_key(gateway, "alpha", MASTER)
    unknown: Any = {
        "custom_id": "nowhere",
        "params": {
            "model": "no-such-model",
            "max_tokens": 5,
            "messages": [{"role": "user", "content": "hi"}],
        },
    }
    with anthropic_sdk(gateway, key) as client:
        created = client.messages.batches.create(requests=[*requests(6), unknown])
        assert created.id.startswith("msgbatch_")
        assert created.processing_status == "in_progress"
        assert created.request_counts.processing == 7
        assert created.results_url is None
        batch = ended(client, created.id)
        counts = batch.request_counts
        assert (counts.succeeded, counts.errored, counts.processing) == (6, 1, 0)
        assert batch.ended_at is not None
        assert batch.ended_at >= batch.created_at
        assert batch.results_url is not None
        results = {r.custom_id: r.result for r in client.messages.batches.results(created.id)}
        assert set(results) == {f"q{i}" for i in range(6)} | {"nowhere"}
        first = results["q0"]
        assert first.type == "succeeded"
        assert first.message.type == "message"
        assert first.message.content[0].type == "text"
        assert first.message.content[0].text == "[msgbatch] echo: question 0"
        failed = results["nowhere"]
        assert failed.type == "errored"
        assert failed.error.error.type == "not_found_error"
        assert "no-such-model" in failed.error.error.message
        listed = [b.id for b in client.messages.batches.list()]
        assert listed == [created.id]
    assert len(fake_openai.requests_for("msgbatch")) == 6
    # Each request was translated to chat completions, as the door does for this model.
    sent = sorted(r.body["messages"][0]["content"] for r in fake_openai.requests_for("msgbatch"))
    assert sent == [f"question {i}" for i in range(6)]

    # Another team sees none of it; OpenAI's batches list is apart from Anthropic's.
    other = team_key(gateway, "beta", MASTER)
    with anthropic_sdk(gateway, other) as stranger:
        with pytest.raises(anthropic.NotFoundError):
            stranger.messages.batches.retrieve(created.id)
        assert list(stranger.messages.batches.list()) == []
    with openai_sdk(gateway, key) as oa:
        assert created.id not in [b.id for b in oa.batches.list().data]
        with pytest.raises(openai.NotFoundError):
            oa.batches.retrieve(created.id)

    # Once ended, it can be deleted, and is gone.
    with anthropic_sdk(gateway, key) as client:
        deleted = client.messages.batches.delete(created.id)
        assert (deleted.id, deleted.type) == (created.id, "message_batch_deleted")
        with pytest.raises(anthropic.NotFoundError):
            client.messages.batches.retrieve(created.id)


def test_a_cancelled_batch_reports_what_never_ran(
    gateway: GatewayProcess, fake_openai: FakeOpenAI
) -> None:
    fake_openai.enqueue("msgbatch-slow", *[Fault.delay(0.1)] * 60)
    with anthropic_sdk(gateway, MASTER) as client:
        created = client.messages.batches.create(requests=requests(60, model="slow"))

        def started() -> bool:
            return len(fake_openai.requests_for("msgbatch-slow")) >= 6

        assert eventually(started, bound=60)
        with pytest.raises(anthropic.BadRequestError, match="still being processed"):
            client.messages.batches.delete(created.id)
        cancelling = client.messages.batches.cancel(created.id)
        assert cancelling.processing_status in ("canceling", "ended")
        assert cancelling.cancel_initiated_at is not None
        batch = ended(client, created.id)
        counts = batch.request_counts
        assert counts.canceled > 0
        assert counts.succeeded + counts.canceled + counts.errored == 60
        results = list(client.messages.batches.results(created.id))
    kinds = [r.result.type for r in results]
    assert len(kinds) == 60
    assert kinds.count("canceled") == counts.canceled
    assert kinds.count("succeeded") == counts.succeeded


def test_paging_newest_first_both_ways(gateway: GatewayProcess) -> None:
    key = team_key(gateway, "paging", MASTER)
    with anthropic_sdk(gateway, key) as client:
        made = [client.messages.batches.create(requests=requests(1)).id for _ in range(3)]
        newest_first = list(reversed(made))
        first = client.messages.batches.list(limit=2)
        assert [b.id for b in first.data] == newest_first[:2]
        assert first.has_more is True
        assert [b.id for b in client.messages.batches.list(limit=2)] == newest_first
        older = client.messages.batches.list(after_id=newest_first[0], limit=5)
        assert [b.id for b in older.data] == newest_first[1:]
        newer = client.messages.batches.list(before_id=newest_first[2], limit=1)
        assert [b.id for b in newer.data] == [newest_first[1]]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"requests": []}, "requests"),
        ({"requests": requests(1) * 2}, "requests.1.custom_id"),
        ({"requests": [{"custom_id": "bad id!", "params": {}}]}, "requests.0.custom_id"),
        (
            {"requests": [{**requests(1)[0], "params": {"model": "m", "messages": []}}]},
            "requests.0.params",
        ),
        (
            {"requests": [streaming()]},
            "requests.0.params.stream",
        ),
        ({"requests": requests(1), "extra": 1}, "extra"),
    ],
)
def test_a_bad_create_request_is_a_400_in_anthropics_shape(
    gateway: GatewayProcess, body: dict[str, Any], param: str
) -> None:
    with anthropic_sdk(gateway, MASTER) as client, pytest.raises(anthropic.BadRequestError) as bad:
        client.post("/v1/messages/batches", cast_to=object, body=body)
    error: Any = bad.value.body
    assert error["type"] == "error"
    assert error["error"]["type"] == "invalid_request_error"
    assert error["error"]["message"].startswith(param)
