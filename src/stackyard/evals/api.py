"""The experiments API, under ``/api/experiments`` (any valid key sees its team's runs; the
master key sees all):

GET  /api/experiments           ?name=&prompt=&limit=: runs, newest first, with summaries
POST /api/experiments           {"run": a run as ``stackyard eval run`` saves it,
                                 "thresholds"?: {scorer: number | null}, "baseline_id"?,
                                 "max_drop"?, "alpha"?}: record it; with thresholds, the
                                 gate is applied here (against the baseline run, if named)
GET  /api/experiments/{id}      one run, every item included
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from stackyard.auth.admission import Governance
from stackyard.errors import APIError, describe_validation, invalid_request
from stackyard.evals import gate
from stackyard.evals.experiments import ExperimentNotFound, Experiments
from stackyard.evals.runner import Run
from stackyard.server.http import Request, Response
from stackyard.server.routing import Reply, Routes

PREFIX = "/api/experiments/"


class RecordRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run: dict[str, Any]
    thresholds: dict[str, float | None] | None = None
    baseline_id: str | None = None
    max_drop: Annotated[float, Field(ge=0, le=1)] = 0.02
    alpha: Annotated[float, Field(gt=0, lt=1)] = 0.05


def _missing(run_id: str) -> APIError:
    return APIError(404, f"no experiment run '{run_id}'", param="id", code="not_found")


class ExperimentsAPI:
    def __init__(self, experiments: Experiments, governance: Governance) -> None:
        self.experiments = experiments
        self.governance = governance

    def register(self, routes: Routes) -> None:
        routes.add("GET", ["/api/experiments"], self.list_all)
        routes.add("POST", ["/api/experiments"], self.record)
        routes.add_prefix("GET", PREFIX, self.read)

    async def list_all(self, request: Request) -> Reply:
        principal = self.governance.authenticate(request)
        query = request.query
        limit = query.get("limit", "50")
        if not limit.isdigit() or not 1 <= int(limit) <= 500:
            raise invalid_request("'limit' must be a number from 1 to 500", param="limit")
        data = await asyncio.to_thread(
            self.experiments.page,
            team_id=principal.team_id,
            admin=principal.admin,
            name=query.get("name"),
            prompt=query.get("prompt"),
            limit=int(limit),
        )
        return Response.json({"object": "list", "data": data})

    async def read(self, request: Request) -> Reply:
        principal = self.governance.authenticate(request)
        run_id = request.path.removeprefix(PREFIX).strip("/")
        try:
            found = await asyncio.to_thread(
                self.experiments.get, run_id, team_id=principal.team_id, admin=principal.admin
            )
        except ExperimentNotFound:
            raise _missing(run_id) from None
        return Response.json(found)

    async def record(self, request: Request) -> Reply:
        principal = self.governance.authenticate(request)
        try:
            body = RecordRequest.model_validate(await request.json_object())
        except ValidationError as exc:
            message, where = describe_validation(exc)
            raise invalid_request(message, param=where) from None
        run = _run(body.run)
        baseline = None
        if body.baseline_id is not None:
            try:
                found = await asyncio.to_thread(
                    self.experiments.get,
                    body.baseline_id,
                    team_id=principal.team_id,
                    admin=principal.admin,
                )
            except ExperimentNotFound:
                raise _missing(body.baseline_id) from None
            baseline = Run.from_json(found["run"])
        checks: list[gate.Check] = []
        if body.thresholds is not None:
            checks = gate.evaluate(
                run, body.thresholds, baseline, max_drop=body.max_drop, alpha=body.alpha
            )
        recorded = await asyncio.to_thread(
            self.experiments.record,
            run,
            team_id=principal.team_id,
            checks=checks,
            passed=all(c.passed for c in checks) if body.thresholds is not None else None,
            baseline_id=body.baseline_id,
        )
        return Response.json(recorded)


def _run(data: dict[str, Any]) -> Run:
    """A run from its JSON, or a 400 naming what is wrong."""
    try:
        run = Run.from_json(data)
        for result in run.results:
            if not isinstance(result.scores, dict) or not all(
                isinstance(v, int | float) for v in result.scores.values()
            ):
                raise ValueError(f"item {result.item_id}: scores must be numbers")
    except (KeyError, TypeError, ValueError) as exc:
        raise invalid_request(
            f"'run' is not a saved evaluation run ({exc}); send the JSON that "
            "'stackyard eval run' writes",
            param="run",
        ) from None
    return run
