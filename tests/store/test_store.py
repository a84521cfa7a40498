import datetime as dt
import time
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from stackyard.auth.budgets import BudgetBook
from stackyard.auth.keys import hash_key
from stackyard.auth.principal import Budget
from stackyard.auth.snapshot import KeySnapshot
from stackyard.store import admin
from stackyard.store.db import Database
from stackyard.store.spend_writer import SpendWriter, spend_row
from stackyard.store.tables import Base


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


def test_expired_keys_stay_in_the_snapshot_as_expired(db: Database) -> None:
    """So that their callers hear "expired" (authentication refuses them by the time)."""
    import time

    from sqlalchemy import update

    from stackyard.store.tables import VirtualKey
    from stackyard.store.tables.base import utcnow

    admin.create_team(db, "t")
    with pytest.raises(admin.AdminError, match="must be in the future"):
        admin.create_key(db, "t", expires_in=dt.timedelta(seconds=-1))
    created = admin.create_key(db, "t", expires_in=dt.timedelta(days=1))
    with db.session() as session:
        session.execute(update(VirtualKey).values(expires_at=utcnow() - dt.timedelta(seconds=1)))
    snapshot = KeySnapshot(db)
    snapshot.load()
    expires_at = snapshot.keys[hash_key(created.key)].expires_at
    assert expires_at is not None
    assert expires_at < time.time()


def test_admin_errors(db: Database) -> None:
    admin.create_team(db, "t")
    with pytest.raises(admin.AdminError, match="exists already"):
        admin.create_team(db, "t")
    with pytest.raises(admin.AdminError, match="no team 'nope'"):
        admin.create_key(db, "nope")
    with pytest.raises(admin.AdminError, match="budget period"):
        admin.create_team(db, "u", budget_period="week")


def spend_rows(team_id: str, n: int = 5) -> list[tuple[object, ...]]:
    """Rows as the gateway logs them: one 40 days old, the rest now; alternating models."""
    now = time.time()
    return [
        spend_row(
            request_id="same",  # client-given request ids may repeat
            created_at=now - (40 * 86400 if i == 0 else 0),
            key_id="k1",
            team_id=team_id,
            model="gpt-4o" if i % 2 else "claude",
            deployment="d",
            endpoint="chat",
            prompt_tokens=10,
            completion_tokens=5,
            cost_usd=0.25,
            latency_ms=3.0,
            status=200 if i < 4 else 500,
            cache_hit=i == 1,
        )
        for i in range(n)
    ]


def test_spend_report_and_budget_loading(db: Database) -> None:
    team = admin.create_team(db, "t")
    now = dt.datetime.now(dt.UTC)
    SpendWriter(db).insert(spend_rows(team["id"]))
    by_team = admin.spend(db, by="team", since=now - dt.timedelta(days=7))
    assert by_team == [
        {"team": "t", "requests": 4, "prompt_tokens": 40, "completion_tokens": 20, "cost_usd": 1.0}
    ]
    by_model = admin.spend(db, by="model", since=now - dt.timedelta(days=7))
    assert {r["model"]: r["requests"] for r in by_model} == {"gpt-4o": 2, "claude": 2}
    book = BudgetBook(db)  # loads from the daily rollup
    month = Budget("team", team["id"], usd=100, period="month")
    total = Budget("team", team["id"], usd=100, period="total")
    today = Budget("team", team["id"], usd=100, period="day")
    book.load([month, total, today])
    assert book.spent(total) == pytest.approx(1.25)
    assert book.spent(today) == pytest.approx(1.0)
    assert book.spent(month) in (pytest.approx(1.0), pytest.approx(1.25))


def test_the_daily_rollup_sums_the_log_in_the_same_transaction(db: Database) -> None:
    team = admin.create_team(db, "t")
    writer = SpendWriter(db)
    writer.insert(spend_rows(team["id"]))
    writer.insert(spend_rows(team["id"])[1:])  # a second batch: the same days add up
    today = dt.datetime.now(dt.UTC).date()
    days = admin.daily_spend(db, by="team", since=today - dt.timedelta(days=60))
    assert [(d["day"], d["requests"]) for d in days] == [
        ((today - dt.timedelta(days=40)).isoformat(), 1),
        (today.isoformat(), 8),
    ]
    latest = days[-1]
    assert latest["team"] == "t"
    assert (latest["errors"], latest["cache_hits"]) == (2, 2)
    assert (latest["prompt_tokens"], latest["completion_tokens"]) == (80, 40)
    assert latest["cost_usd"] == pytest.approx(2.0)
    assert latest["mean_latency_ms"] == 3.0
    # The rollup agrees with the log it sums, group by group.
    log = admin.spend(db, by="model", since=dt.datetime.now(dt.UTC) - dt.timedelta(days=1))
    rolled = admin.daily_spend(db, by="model", since=today)
    assert {r["model"]: (r["requests"], r["cost_usd"]) for r in log} == {
        r["model"]: (r["requests"], r["cost_usd"]) for r in rolled
    }
    with pytest.raises(admin.AdminError, match="--by must be one of"):
        admin.daily_spend(db, by="colour", since=today)


def test_organisations_add_a_level_of_models_limits_and_budget(db: Database) -> None:
    org = admin.create_organization(
        db, "acme", models=["gpt-4o", "claude"], rpm=1000, budget_usd=50, budget_soft=True
    )
    with pytest.raises(admin.AdminError, match="exists already"):
        admin.create_organization(db, "acme")
    with pytest.raises(admin.AdminError, match="no organisation 'nope'"):
        admin.create_team(db, "x", organization="nope")
    team = admin.create_team(db, "search", organization="acme", models=["gpt-4o", "llama"])
    assert team["organization_id"] == org["id"]
    user = admin.create_user(db, "ada@example.com", team="search", models=["gpt-4o", "claude"])
    assert user["models"] == ["gpt-4o", "claude"]
    created = admin.create_key(db, "search", user="ada@example.com")
    snapshot = KeySnapshot(db)
    snapshot.load()
    principal = snapshot.keys[hash_key(created.key)]
    assert principal.organization_id == org["id"]
    assert principal.models == frozenset({"gpt-4o"})  # key, user, team and org all allow it
    assert [(x.scope, x.rpm) for x in principal.limits] == [("organization", 1000)]
    assert [(b.scope, b.usd, b.soft) for b in principal.budgets] == [("organization", 50.0, True)]
    assert [o["name"] for o in admin.list_organizations(db)] == ["acme"]
    # Its spend, logged with the organisation, reports and loads its budget.
    SpendWriter(db).insert(
        [
            spend_row(
                request_id="r",
                created_at=time.time(),
                key_id=created.record["id"],
                team_id=team["id"],
                organization_id=org["id"],
                model="gpt-4o",
                endpoint="chat",
                prompt_tokens=1,
                completion_tokens=1,
                cost_usd=0.5,
                latency_ms=1.0,
                status=200,
                cache_hit=False,
            )
        ]
    )
    since = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    assert admin.spend(db, by="organization", since=since)[0]["organization"] == "acme"
    book = BudgetBook(db)
    book.load(list(principal.budgets))
    assert book.spent(principal.budgets[0]) == pytest.approx(0.5)


def test_the_rollup_migration_goes_down_and_fills_from_an_existing_log(db: Database) -> None:
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    from stackyard.store.db import MIGRATIONS

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0006")  # back to before organisations and rollups
    with db.engine.begin() as connection:
        for i in range(3):
            connection.execute(
                text(
                    "INSERT INTO spend_log (request_id, created_at, key_id, team_id, model, "
                    "endpoint, prompt_tokens, completion_tokens, cost_usd, latency_ms, status, "
                    "cache_hit) VALUES (:id, :at, 'k', 't', 'm', 'chat', 2, 1, 0.5, 4.0, "
                    ":status, :hit)"
                ),
                {
                    "id": f"r{i}",
                    "at": dt.datetime(2026, 11, 2, 23, 30, tzinfo=dt.UTC),
                    "status": 200 if i else 429,
                    "hit": i == 2,
                },
            )
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    [day] = admin.daily_spend(db, by="key", since=dt.date(2026, 11, 1))
    assert day == {
        "day": "2026-11-02",
        "key": "k",
        "requests": 3,
        "errors": 1,
        "cache_hits": 1,
        "prompt_tokens": 6,
        "completion_tokens": 3,
        "cost_usd": 1.5,
        "mean_latency_ms": 4.0,
    }


async def test_the_spend_writer_writes_every_row_it_accepted(db: Database) -> None:
    writer = SpendWriter(db, batch_size=7, interval=0.01)
    writer.start()
    now = time.time()
    for i in range(50):
        await writer.put(
            spend_row(
                request_id="req",
                created_at=now,
                key_id="k",
                team_id="t",
                model="m",
                deployment="d",
                endpoint="chat",
                prompt_tokens=i,
                completion_tokens=1,
                cost_usd=0.01,
                latency_ms=2.0,
                status=200,
                cache_hit=False,
            )
        )
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

    unmigrated = Database(f"sqlite:///{tmp_path / 'empty.db'}")  # no spend_log table
    spill = tmp_path / "spill.jsonl"
    writer = SpendWriter(unmigrated, interval=0.01, spill_path=spill, retry_delay=0)
    writer.start()
    await writer.put(
        spend_row(request_id="req-1", created_at=time.time(), model="m", status=200, cost_usd=0.5)
    )
    await writer.close()
    assert (writer.written, writer.spilled) == (0, 1)
    [line] = spill.read_text().splitlines()
    assert json.loads(line)["request_id"] == "req-1"
    unmigrated.dispose()
