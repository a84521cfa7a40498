"""``GET`` and ``DELETE /v1/models/{id}``, and the models API in Anthropic's shape, with the
official SDKs (strict about the responses' shape) on the whole server in this process.

Fine-tuned models are served the way a succeeded job's are: the job's row in the database, its
model directory on disk, the supervisor serving it on a ``local`` base that loads lazily (no
weights are read: no request generates).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from sqlalchemy import select

from stackyard.finetune.weights import Weights, checkpoint_name
from stackyard.server.app import Stackyard
from stackyard.server.parts import FINETUNE_MODULES
from stackyard.store import admin
from stackyard.store.db import Database
from stackyard.store.tables.finetune import JobRecord, WeightsPart
from tests.conftest import unavailable
from tests.fakes.openai_upstream import FakeOpenAI
from tests.server.harness import running, sdks

MASTER = "sk-master-models-0123456789"
TUNED_A = "ft:base:team-a:abc123"  # team-a's
TUNED_B = "ft:base:team-b:def456"  # team-b's
CONFIGURED = ["a", "org/model", "base"]


@dataclass
class Gateway:
    config: dict[str, Any]
    url: str
    keys: dict[str, str]  # team-a, team-b, and "narrow": team-a's key limited to model "a"
    teams: dict[str, str]  # name: id
    folder: Path


def model_dir(folder: Path) -> Path:
    """A model directory as far as serving it needs (it is never loaded)."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "llama"}))
    return folder


def add_job(
    db: Database,
    job_id: str,
    team_id: str | None,
    *,
    model: str | None,
    folder: Path | None,
    status: str = "succeeded",
) -> None:
    with db.session() as session:
        session.add(
            JobRecord(
                id=job_id,
                model="base",
                training_file="file-unused",
                settings={},
                suffix="tuned",
                status=status,
                control=None if status == "succeeded" else "pause",  # not claimed by a worker
                fine_tuned_model=model,
                adapter_path=str(folder) if folder else None,
                team_id=team_id,
                created_at=dt.datetime.now(dt.UTC),
            )
        )


@pytest.fixture
def gateway(fake_openai: FakeOpenAI, tmp_path: Path) -> Gateway:
    missing = [m for m in FINETUNE_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        unavailable(f"serving fine-tuned models needs {', '.join(missing)} (the finetune extra)")
    url = f"sqlite:///{tmp_path / 'models.db'}"
    upstream = fake_openai.base_url("models")
    config: dict[str, Any] = {
        "models": [
            {"name": "a", "provider": "openai-compatible", "api_base": upstream},
            {"name": "org/model", "provider": "openai-compatible", "api_base": upstream},
            {
                "name": "base",
                "provider": "local",
                "model": str(model_dir(tmp_path / "base")),
                "options": {"load": "lazy"},
            },
        ],
        "auth": {"master_key": MASTER},
        "database_url": url,
        "finetune": {"data_dir": str(tmp_path / "jobs")},
    }
    db = Database(url)
    db.migrate()
    teams = {name: admin.create_team(db, name)["id"] for name in ("team-a", "team-b")}
    keys = {
        "team-a": admin.create_key(db, "team-a").key,
        "team-b": admin.create_key(db, "team-b").key,
        "narrow": admin.create_key(db, "team-a", models=["a"]).key,
    }
    db.dispose()
    return Gateway(config, url, keys, teams, tmp_path)


def add_tuned(gw: Gateway, name: str, team: str, job_id: str) -> None:
    db = Database(gw.url)
    add_job(db, job_id, gw.teams[team], model=name, folder=model_dir(gw.folder / job_id))
    db.dispose()


def error_of(exc: openai.APIStatusError | anthropic.APIStatusError) -> dict[str, Any]:
    """The error the gateway sent, as it was on the wire."""
    body: dict[str, Any] = exc.response.json()
    return body


async def serving(app: Stackyard, name: str, *, served: bool = True, bound: float = 60.0) -> bool:
    """Whether ``app`` serves ``name`` (or, ``served=False``, no longer does) within ``bound``
    seconds: its supervisor's poll serves a succeeded job's model, and withdraws a deleted one.
    (A request may find the model before the poll, but not while the poll is serving it.)"""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + bound
    while (name in app.gateway.router.deployments) != served:
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


# -- GET /v1/models/{id} ----------------------------------------------------------------------


async def test_a_model_in_openai_shape(gateway: Gateway) -> None:
    add_tuned(gateway, TUNED_A, "team-a", "ftjob-a")
    async with running(gateway.config) as (app, http), sdks(app, MASTER) as (oa, _):
        found = await oa.models.retrieve("a")
        assert (found.id, found.object, found.owned_by) == ("a", "model", "openai-compatible")
        listed = {m.id: m for m in (await oa.models.list()).data}
        assert found.created == listed["a"].created
        # Ids with '/' and ':' (the SDK sends org%2Fmodel).
        assert (await oa.models.retrieve("org/model")).id == "org/model"
        assert await serving(app, TUNED_A)
        tuned = await oa.models.retrieve(TUNED_A)
        assert (tuned.id, tuned.owned_by) == (TUNED_A, "local")
        # Without /v1 too.
        bare = await http.get("/models/org%2Fmodel", headers={"authorization": f"Bearer {MASTER}"})
        assert bare.json() == {
            "id": "org/model",
            "object": "model",
            "created": listed["org/model"].created,
            "owned_by": "openai-compatible",
        }

        with pytest.raises(openai.NotFoundError) as missing:
            await oa.models.retrieve("gpt-nothing")
        error = error_of(missing.value)["error"]
        assert (error["code"], error["param"], error["type"]) == (
            "model_not_found",
            "model",
            "invalid_request_error",
        )
        assert "gpt-nothing" in error["message"]


async def test_a_key_limited_to_some_models_finds_only_those(gateway: Gateway) -> None:
    async with (
        running(gateway.config) as (app, _),
        sdks(app, gateway.keys["narrow"]) as (
            oa,
            an,
        ),
    ):
        assert (await oa.models.retrieve("a")).id == "a"
        for name in ("org/model", "base"):
            with pytest.raises(openai.NotFoundError) as hidden:
                await oa.models.retrieve(name)
            message = error_of(hidden.value)["error"]["message"]
            assert "Known models: a." in message  # the models it may use, not the others
        assert [m.id for m in (await oa.models.list()).data] == ["a"]
        assert [m.id async for m in an.models.list()] == ["a"]
        with pytest.raises(anthropic.NotFoundError):
            await an.models.retrieve("base")


async def test_a_caller_without_a_key_is_refused(gateway: Gateway) -> None:
    async with running(gateway.config) as (app, _), sdks(app, "sk-sy-wrong") as (oa, an):
        with pytest.raises(openai.AuthenticationError):
            await oa.models.retrieve("a")
        with pytest.raises(anthropic.AuthenticationError) as refused:
            await an.models.retrieve("a")
        assert error_of(refused.value)["error"]["type"] == "authentication_error"


# -- DELETE /v1/models/{id} -------------------------------------------------------------------


async def test_the_owning_team_deletes_its_model_for_good(gateway: Gateway) -> None:
    add_tuned(gateway, TUNED_A, "team-a", "ftjob-a")
    async with running(gateway.config) as (app, _):
        assert await serving(app, TUNED_A)
        async with sdks(app, gateway.keys["team-b"]) as (other, _):
            assert (await other.models.retrieve(TUNED_A)).id == TUNED_A  # served, usable
            with pytest.raises(openai.NotFoundError) as refused:
                await other.models.delete(TUNED_A)  # not theirs: as if it did not exist
            assert error_of(refused.value)["error"]["code"] == "model_not_found"
            with pytest.raises(openai.NotFoundError) as unknown:
                await other.models.delete("ft:base:team-b:000000")
            assert error_of(unknown.value)["error"]["message"] == error_of(refused.value)["error"][
                "message"
            ].replace(TUNED_A, "ft:base:team-b:000000")
        assert TUNED_A in app.gateway.router.deployments

        async with sdks(app, gateway.keys["team-a"]) as (oa, _):
            deleted = await oa.models.delete(TUNED_A)
            assert (deleted.id, deleted.object, deleted.deleted) == (TUNED_A, "model", True)
            assert TUNED_A not in app.gateway.router.deployments
            with pytest.raises(openai.NotFoundError):
                await oa.models.retrieve(TUNED_A)
            assert TUNED_A not in [m.id for m in (await oa.models.list()).data]
            with pytest.raises(openai.NotFoundError):
                await oa.chat.completions.create(
                    model=TUNED_A, messages=[{"role": "user", "content": "hi"}]
                )
            with pytest.raises(openai.NotFoundError):
                await oa.models.delete(TUNED_A)  # once

    db = Database(gateway.url)
    with db.session() as session:
        job = session.get(JobRecord, "ftjob-a")
        assert job is not None
        assert job.fine_tuned_model == TUNED_A  # the job keeps its name
        assert job.model_deleted_at is not None
    db.dispose()
    # A restart does not bring it back.
    async with running(gateway.config) as (app, _), sdks(app, MASTER) as (oa, _):
        with pytest.raises(openai.NotFoundError):
            await oa.models.retrieve(TUNED_A)
        assert TUNED_A not in app.gateway.router.deployments


async def test_the_master_key_deletes_any_and_every_instance_stops_serving_it(
    gateway: Gateway,
) -> None:
    add_tuned(gateway, TUNED_B, "team-b", "ftjob-b")
    async with (
        running(gateway.config) as (first, _),
        running(gateway.config) as (second, _),
        sdks(first, MASTER) as (oa, _),
        sdks(second, MASTER) as (oa_second, _),
    ):
        assert await serving(second, TUNED_B)
        assert (await oa_second.models.retrieve(TUNED_B)).id == TUNED_B
        assert (await oa.models.delete(TUNED_B)).deleted is True
        assert await serving(second, TUNED_B, served=False), "the other instance serves it"
        with pytest.raises(openai.NotFoundError):
            await oa_second.models.retrieve(TUNED_B)


async def test_a_configured_model_cannot_be_deleted(gateway: Gateway) -> None:
    async with running(gateway.config) as (app, _), sdks(app, MASTER) as (oa, _):
        for name in ("a", "org/model"):
            with pytest.raises(openai.BadRequestError) as refused:
                await oa.models.delete(name)
            error = error_of(refused.value)["error"]
            assert (error["code"], error["param"]) == ("model_not_deletable", "model")
            assert "not a fine-tuned model" in error["message"]
        with pytest.raises(openai.NotFoundError):
            await oa.models.delete("gpt-nothing")
        assert {"a", "org/model"} <= set(app.gateway.router.deployments)


async def test_a_checkpoint_is_deleted_once_its_job_is_done(gateway: Gateway) -> None:
    db = Database(gateway.url)
    weights = Weights(db, gateway.folder / "cache")
    adapter = gateway.folder / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    running_ckpt = checkpoint_name("ft:base:tuned:runs000", 2)
    done_ckpt = checkpoint_name(TUNED_A, 4)
    add_job(db, "ftjob-runs", gateway.teams["team-a"], model=None, folder=None, status="queued")
    add_job(db, "ftjob-done", gateway.teams["team-a"], model=None, folder=None)
    weights.put("ftjob-runs", running_ckpt, adapter, step=2)
    weights.put("ftjob-done", done_ckpt, adapter, step=4)
    async with (
        running(gateway.config) as (app, _),
        sdks(app, gateway.keys["team-a"]) as (
            oa,
            _,
        ),
    ):
        with pytest.raises(openai.BadRequestError) as refused:
            await oa.models.delete(running_ckpt)  # its paused job resumes from it
        assert error_of(refused.value)["error"]["code"] == "model_not_deletable"
        assert (await oa.models.delete(done_ckpt)).deleted is True
        with pytest.raises(openai.NotFoundError):
            await oa.models.delete(done_ckpt)
    with db.session() as session:
        stored = set(session.scalars(select(WeightsPart.name)))
    assert stored == {running_ckpt}
    db.dispose()


# -- Anthropic's shape ------------------------------------------------------------------------


async def test_anthropic_lists_pages_and_finds_models(gateway: Gateway) -> None:
    names = [f"m{i}" for i in range(5)]
    upstream = gateway.config["models"][0]["api_base"]
    gateway.config["models"] = [
        {"name": n, "provider": "openai-compatible", "api_base": upstream} for n in names
    ]
    async with (
        running(gateway.config) as (app, _),
        sdks(app, gateway.keys["team-a"]) as (
            _,
            an,
        ),
    ):
        first = await an.models.list(limit=2)
        assert [m.id for m in first.data] == ["m0", "m1"]
        assert (first.has_more, first.first_id, first.last_id) == (True, "m0", "m1")
        assert all(m.type == "model" and m.lifecycle == "active" for m in first.data)
        assert [m.id async for m in an.models.list(limit=2)] == names  # page after page
        last = await an.models.list(after_id="m2", limit=5)
        assert ([m.id for m in last.data], last.has_more) == (["m3", "m4"], False)
        before = await an.models.list(before_id="m4", limit=2)
        assert ([m.id for m in before.data], before.has_more) == (["m2", "m3"], True)
        backwards = [m.id async for m in an.models.list(before_id="m4", limit=2)]
        assert sorted(backwards) == ["m0", "m1", "m2", "m3"]
        assert (await an.models.list()).has_more is False  # 20 by default

        found = await an.models.retrieve("m3")
        assert (found.id, found.display_name, found.type) == ("m3", "m3", "model")
        assert found.created_at.tzinfo is not None
        assert found.created_at == next(m for m in first.data if m.id == "m0").created_at

        with pytest.raises(anthropic.NotFoundError) as missing:
            await an.models.retrieve("m9")
        error = error_of(missing.value)
        assert (error["type"], error["error"]["type"]) == ("error", "not_found_error")
        for bad in ({"limit": 0}, {"limit": 1001}, {"after_id": "m9"}):
            with pytest.raises(anthropic.BadRequestError) as refused:
                await an.models.list(**bad)
            assert error_of(refused.value)["error"]["type"] == "invalid_request_error"
        assert (await an.models.list(lifecycle=["retired"])).data == []
