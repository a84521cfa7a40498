"""Experiments kept by the gateway: each evaluation run, with every item's output and scores,
a summary for lists, and the gate's verdict. ``stackyard eval run`` records its runs here, so
that the console can list them, compare two, and show a prompt version's evaluations where
its labels are moved."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from stackyard.evals.gate import Check
from stackyard.evals.runner import Run
from stackyard.store.db import Database
from stackyard.store.tables import EvalRun


class ExperimentNotFound(LookupError):
    pass


def summarise(run: Run, checks: Sequence[Check] = ()) -> dict[str, Any]:
    """What a list shows of a run: each scorer's mean, counts, cost, latency, the checks."""
    scorers = sorted({name for r in run.results for name in r.scores})
    latencies = sorted(r.latency_ms for r in run.results if r.error is None)
    return {
        "items": len(run.results),
        "errors": sum(r.error is not None for r in run.results),
        "scores": {name: round(run.mean(name), 6) for name in scorers},
        "cost_usd": round(sum(r.cost_usd for r in run.results), 8),
        "tokens": sum(r.input_tokens + r.output_tokens for r in run.results),
        "latency_p50_ms": round(latencies[len(latencies) // 2], 1) if latencies else None,
        "seconds": round(run.seconds, 3),
        "checks": [
            {
                "scorer": c.scorer,
                "mean": c.mean,
                "threshold": c.threshold,
                "baseline": c.baseline,
                "delta": c.delta,
                "p_value": c.p_value,
                "passed": c.passed,
            }
            for c in checks
        ],
    }


def served_prompt(run: Run) -> tuple[str | None, int | None]:
    """The registry prompt and version that answered most items (``name@version``)."""
    served = Counter(r.prompt_version for r in run.results if r.prompt_version)
    if not served:
        return None, None
    name, _, version = served.most_common(1)[0][0].rpartition("@")
    return (name or None), int(version) if version.isdigit() else None


def public(row: EvalRun, *, full: bool = False) -> dict[str, Any]:
    shown: dict[str, Any] = {
        "id": row.id,
        "object": "experiment.run",
        "name": row.name,
        "target": row.target,
        "prompt": row.prompt,
        "prompt_version": row.prompt_version,
        "passed": row.passed,
        "baseline_id": row.baseline_id,
        "created_at": int(row.created_at.timestamp()),
        "summary": row.summary,
    }
    if full:
        shown["run"] = row.run
    return shown


class Experiments:
    def __init__(self, db: Database) -> None:
        self.db = db

    def record(
        self,
        run: Run,
        *,
        team_id: str | None,
        checks: Sequence[Check] = (),
        passed: bool | None = None,
        baseline_id: str | None = None,
    ) -> dict[str, Any]:
        prompt, version = served_prompt(run)
        row = EvalRun(
            id="exp-" + uuid.uuid4().hex[:20],
            name=run.name[:200],
            target=run.target[:400],
            prompt=prompt,
            prompt_version=version,
            passed=passed,
            baseline_id=baseline_id,
            team_id=team_id,
            created_at=dt.datetime.now(dt.UTC),
            summary=summarise(run, checks),
            run=run.to_json(),
        )
        with self.db.session() as session:
            session.add(row)
        return public(row)

    def page(
        self,
        *,
        team_id: str | None,
        admin: bool,
        name: str | None = None,
        prompt: str | None = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        """Newest first."""
        query = select(EvalRun)
        if not admin:
            query = query.where(EvalRun.team_id == team_id)
        if name:
            query = query.where(EvalRun.name == name)
        if prompt:
            query = query.where(EvalRun.prompt == prompt)
        query = query.order_by(EvalRun.created_at.desc(), EvalRun.id).limit(limit)
        with self.db.session() as session:
            return [public(row) for row in session.scalars(query)]

    def get(self, run_id: str, *, team_id: str | None, admin: bool) -> dict[str, Any]:
        with self.db.session() as session:
            row = session.get(EvalRun, run_id)
            if row is None or not (admin or row.team_id == team_id):
                raise ExperimentNotFound(run_id)
            return public(row, full=True)
