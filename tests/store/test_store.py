import datetime as dt
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import insert

from stackyard.auth.budgets import BudgetBook
from stackyard.auth.keys import hash_key
from stackyard.auth.principal import Budget
from stackyard.auth.snapshot import KeySnapshot
from stackyard.store import admin
from stackyard.store.db import Database
from stackyard.store.tables import Base, SpendRecord


def test_migrations_match_the_models_and_run_twice(db: Database) -> None:
    db.migrate()  # idempotent
    with db.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []


def test_key_lifecycle_and_snapshot(db: Database) -> None:
    admin.create_team(db, "search", models=["gpt-4o", "claude"], rpm=100, budget_usd=10)
    created = admin.create_key(db, "search", name="ci", models=["gpt-4o", "llama"], tpm=1000)
    assert created.key.startswith("sk-sy-")
    assert created.record["prefix"] == created.key[:10]
    assert "key" not in created.record
    snapshot = KeySnapshot(db)
    assert snapshot.load()
    assert not snapshot.load()  # nothing changed: no reload
    principal = snapshot.keys[hash_key(created.key)]
    assert principal.models == frozenset({"gpt-4o"})  # the key's list within the team's
    assert {(x.scope, x.rpm, x.tpm) for x in principal.limits} == {
        ("key", None, 1000),
        ("team", 100, None),
    }
    assert [(b.scope, b.usd) for b in principal.budgets] == [("team", 10.0)]
    admin.revoke_key(db, created.record["id"])
    assert snapshot.load()
    assert hash_key(created.key) not in snapshot.keys
    assert admin.list_keys(db) == []
    assert len(admin.list_keys(db, include_revoked=True)) == 1


def test_expired_keys_leave_the_snapshot(db: Database) -> None:
    admin.create_team(db, "t")
    created = admin.create_key(db, "t", expires_in=dt.timedelta(seconds=-1))
    snapshot = KeySnapshot(db)
    snapshot.load()
    assert hash_key(created.key) not in snapshot.keys


def test_admin_errors(db: Database) -> None:
    admin.create_team(db, "t")
    with pytest.raises(admin.AdminError, match="exists already"):
        admin.create_team(db, "t")
    with pytest.raises(admin.AdminError, match="no team 'nope'"):
        admin.create_key(db, "nope")
    with pytest.raises(admin.AdminError, match="budget period"):
        admin.create_team(db, "u", budget_period="week")


def test_spend_report_and_budget_loading(db: Database) -> None:
    team = admin.create_team(db, "t")
    now = dt.datetime.now(dt.UTC)
    rows = [
        {
            "request_id": "same",  # client-given request ids may repeat
            "created_at": now - dt.timedelta(days=40 if i == 0 else 0),
            "key_id": "k1",
            "team_id": team["id"],
            "user_id": None,
            "model": "gpt-4o" if i % 2 else "claude",
            "deployment": "d",
            "endpoint": "chat",
            "prompt_tokens": 10,
            "completion_tokens": 5,
            "cost_usd": 0.25,
            "latency_ms": 3.0,
            "status": 200,
            "cache_hit": False,
        }
        for i in range(5)
    ]
    with db.session() as session:
        session.execute(insert(SpendRecord), rows)
    by_team = admin.spend(db, by="team", since=now - dt.timedelta(days=7))
    assert by_team == [
        {"team": "t", "requests": 4, "prompt_tokens": 40, "completion_tokens": 20, "cost_usd": 1.0}
    ]
    by_model = admin.spend(db, by="model", since=now - dt.timedelta(days=7))
    assert {r["model"]: r["requests"] for r in by_model} == {"gpt-4o": 2, "claude": 2}
    book = BudgetBook(db)
    month = Budget("team", team["id"], usd=100, period="month")
    total = Budget("team", team["id"], usd=100, period="total")
    book.load([month, total])
    assert book.spent(total) == pytest.approx(1.25)
    assert book.spent(month) <= 1.25


async def test_the_spend_writer_writes_every_row_it_accepted(db: Database) -> None:
    import time

    from stackyard.store.spend_writer import SpendWriter

    writer = SpendWriter(db, batch_size=7, interval=0.01)
    writer.start()
    now = time.time()
    for i in range(50):
        row = ("req", now, "k", "t", None, "m", "d", "chat", i, 1, 0.01, 2.0, 200, False)
        await writer.put(row)
    await writer.close()
    assert writer.written == 50
    report = admin.spend(db, by="key", since=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
    assert report == [
        {
            "key": "k",
            "requests": 50,
            "prompt_tokens": sum(range(50)),
            "completion_tokens": 50,
            "cost_usd": pytest.approx(0.5),
        }
    ]


async def test_rows_the_database_refuses_go_to_the_spill_file(tmp_path: Path) -> None:
    import json
    import time

    from stackyard.store.spend_writer import SpendWriter

    unmigrated = Database(f"sqlite:///{tmp_path / 'empty.db'}")  # no spend_log table
    spill = tmp_path / "spill.jsonl"
    writer = SpendWriter(unmigrated, interval=0.01, spill_path=spill, retry_delay=0)
    writer.start()
    await writer.put(
        ("req-1", time.time(), "k", "t", None, "m", "d", "chat", 3, 4, 0.5, 2.0, 200, False)
    )
    await writer.close()
    assert (writer.written, writer.spilled) == (0, 1)
    [line] = spill.read_text().splitlines()
    assert json.loads(line)["request_id"] == "req-1"
    unmigrated.dispose()
