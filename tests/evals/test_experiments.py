"""Experiments kept in the database: a run's summary (means, counts, cost, latency), the
prompt version that answered, and the listing's filters and team scoping."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackyard.evals.experiments import ExperimentNotFound, Experiments, served_prompt, summarise
from stackyard.evals.gate import Check
from stackyard.evals.runner import ItemResult, Run
from stackyard.store.db import Database


def a_run(name: str, served: list[str | None]) -> Run:
    results = [
        ItemResult(
            f"i{n}",
            "out",
            {"exact": float(n % 2)},
            {},
            10.0 * (n + 1),
            input_tokens=3,
            output_tokens=2,
            cost_usd=0.5,
            prompt_version=version,
            error="boom" if n == 3 else None,
        )
        for n, version in enumerate(served)
    ]
    return Run(name, "greet:production", results, 0.0, 2.0)


def test_a_summary_and_the_prompt_version_that_answered_most() -> None:
    run = a_run("greet", ["greet@2", "greet@2", "greet@3", None])
    summary = summarise(run, [Check("exact", 0.5, 0.4)])
    assert summary["items"] == 4
    assert summary["errors"] == 1
    assert summary["scores"] == {"exact": 0.5}
    assert summary["cost_usd"] == 2.0
    assert summary["tokens"] == 20
    assert summary["latency_p50_ms"] == 20.0  # the middle of the three that answered
    assert summary["checks"][0]["passed"] is True
    assert served_prompt(run) == ("greet", 2)
    assert served_prompt(a_run("plain", [None, None])) == (None, None)


def test_runs_are_listed_newest_first_filtered_and_scoped(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    db.migrate()
    store = Experiments(db)
    first = store.record(a_run("greet", ["greet@1"]), team_id="t1")
    second = store.record(a_run("greet", ["greet@2"]), team_id="t1", passed=True)
    other = store.record(a_run("faq", ["faq@1"]), team_id="t2")
    ids = [r["id"] for r in store.page(team_id="t1", admin=False)]
    assert ids == [second["id"], first["id"]]
    assert [r["id"] for r in store.page(team_id=None, admin=True, name="faq")] == [other["id"]]
    assert [r["prompt_version"] for r in store.page(team_id=None, admin=True, prompt="greet")] == [
        2,
        1,
    ]
    full = store.get(second["id"], team_id="t1", admin=False)
    assert full["run"]["results"][0]["prompt_version"] == "greet@2"
    assert full["passed"] is True
    with pytest.raises(ExperimentNotFound):
        store.get(other["id"], team_id="t1", admin=False)  # another team's
