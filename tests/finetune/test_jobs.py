"""Jobs and files in the store, on SQLite and PostgreSQL: OpenAI's shapes, the owner's
controls, claiming by one worker, a stale worker's job taken over, team scoping."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import update

from stackyard.finetune.files import FileNotFound, Files
from stackyard.finetune.jobs import JobNotFound, Jobs
from stackyard.finetune.settings import Settings
from stackyard.store.db import Database
from stackyard.store.tables.finetune import JobRecord


def make(db: Database, tmp_path: Path, team: str | None = "team-a") -> tuple[Jobs, dict]:  # type: ignore[type-arg]
    files = Files(db)
    data = files.create("train.jsonl", "fine-tune", b'{"prompt": "a", "completion": "b"}\n', team)
    jobs = Jobs(db, tmp_path)
    job = jobs.create(
        model="smollm2",
        training_file=data["id"],
        validation_file=None,
        settings=Settings(n_epochs=2, learning_rate=4e-4),
        suffix="demo",
        metadata={"ticket": "42"},
        team_id=team,
    )
    return jobs, job


def test_a_job_in_openai_shape(db: Database, tmp_path: Path) -> None:
    jobs, job = make(db, tmp_path)
    assert job["object"] == "fine_tuning.job"
    assert job["status"] == "validating_files"
    assert job["hyperparameters"] == {
        "batch_size": 8,
        "learning_rate_multiplier": 2.0,
        "n_epochs": 2,
    }
    assert job["metadata"] == {"ticket": "42"}
    events, more = jobs.events(job["id"])
    assert [e["message"] for e in events] == [f"Created fine-tuning job: {job['id']}"]
    assert not more


def test_controls_follow_the_state(db: Database, tmp_path: Path) -> None:
    jobs, job = make(db, tmp_path)
    assert jobs.control(job["id"], "pause")["paused"]
    with pytest.raises(ValueError, match="already paused"):
        jobs.control(job["id"], "pause")
    assert not jobs.control(job["id"], "resume")["paused"]
    with pytest.raises(ValueError, match="not paused"):
        jobs.control(job["id"], "resume")
    assert jobs.control(job["id"], "cancel")["status"] == "cancelled"  # no worker yet
    with pytest.raises(ValueError, match="has cancelled"):
        jobs.control(job["id"], "cancel")


def test_one_worker_claims_a_job_and_a_silent_one_loses_it(db: Database, tmp_path: Path) -> None:
    jobs, job = make(db, tmp_path)
    assert jobs.claimable() == [job["id"]]
    assert jobs.claim(job["id"], "host-a:1")
    assert not jobs.claim(job["id"], "host-b:2")
    assert jobs.claimable() == []
    old = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    with db.session() as session:
        session.execute(update(JobRecord).values(heartbeat_at=old))
    assert jobs.claimable() == [job["id"]]
    assert jobs.claim(job["id"], "host-b:2")
    jobs.control(job["id"], "pause")
    jobs.release(job["id"], status="queued")
    assert jobs.claimable() == []  # a paused job waits for its resume
    jobs.control(job["id"], "resume")
    assert jobs.claimable() == [job["id"]]


def test_teams_see_their_own(db: Database, tmp_path: Path) -> None:
    jobs, job = make(db, tmp_path, team="team-a")
    with pytest.raises(JobNotFound):
        jobs.get(job["id"], team_id="team-b", admin=False)
    assert jobs.get(job["id"], team_id="team-a", admin=False)["id"] == job["id"]
    page, _ = jobs.page(team_id="team-b", admin=False)
    assert page == []
    files = Files(db)
    with pytest.raises(FileNotFound):
        files.get(job["training_file"], team_id="team-b", admin=False)
    assert files.content(job["training_file"]) == b'{"prompt": "a", "completion": "b"}\n'


def test_pages_of_jobs(db: Database, tmp_path: Path) -> None:
    jobs, first = make(db, tmp_path)
    _, second = make(db, tmp_path)
    page, more = jobs.page(limit=1)
    assert ([j["id"] for j in page], more) == ([second["id"]], True)
    page, more = jobs.page(limit=1, after=second["id"])
    assert ([j["id"] for j in page], more) == ([first["id"]], False)


def test_full_tuning_multiplies_its_own_learning_rate(db: Database, tmp_path: Path) -> None:
    assert Settings(tuning="full").learning_rate == 2e-5  # LoRA's is ten times higher
    assert Settings(tuning="full", learning_rate=1e-4).learning_rate == 1e-4
    job = Jobs(db, tmp_path).create(
        model="smollm2",
        training_file="file-x",
        validation_file=None,
        settings=Settings(tuning="full", learning_rate=4e-5),
        suffix="",
        metadata=None,
        team_id=None,
    )
    assert job["hyperparameters"]["learning_rate_multiplier"] == 2
    assert job["settings"]["tuning"] == "full"
