"""The console's evaluation pages, read from the experiments API as the logged-in key:

GET /ui/evals                   runs, newest first (?name= one experiment's), with their
                                verdicts and means; pick two to compare
GET /ui/evals/compare?a=&b=     two runs side by side: each scorer's means, the change and
                                its significance, items won and lost; then item by item
GET /ui/evals/{id}              one run: the gate's checks, then every item
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stackyard.evals import gate
from stackyard.evals.runner import Run
from stackyard.server.http import Request
from stackyard.server.routing import Reply, Routes
from stackyard.ui import forms

if TYPE_CHECKING:
    from stackyard.ui.pages import Console, Viewer

PREFIX = "/ui/evals/"
API = "/api/experiments"


class ExperimentPages:
    def __init__(self, console: Console) -> None:
        self.console = console

    def register(self, routes: Routes) -> None:
        page = self.console.page
        routes.add("GET", ["/ui/evals"], page(self.runs))
        routes.add("GET", ["/ui/evals/compare"], page(self.compare))
        routes.add_prefix("GET", PREFIX, page(self.run))

    async def runs(self, request: Request, key: str, viewer: Viewer) -> Reply:
        name = request.query.get("name", "")
        status, found = await self.console.call(key, "GET", API, {"name": name, "limit": 200})
        return self.console.render(
            "evals.html",
            viewer=viewer,
            active="evals",
            runs=forms.rows(found),
            name=name,
            error=forms.message(found) if status != 200 else None,
        )

    async def run(self, request: Request, key: str, viewer: Viewer) -> Reply:
        run_id = request.path.removeprefix(PREFIX).strip("/")
        found = await self._get(key, run_id)
        if found is None:
            return self._missing(viewer, run_id)
        scorers = sorted(found["summary"]["scores"])
        return self.console.render(
            "eval.html", viewer=viewer, active="evals", run=found, scorers=scorers
        )

    async def compare(self, request: Request, key: str, viewer: Viewer) -> Reply:
        params = request.query
        ids = params.get("a", ""), params.get("b", "")
        runs = [await self._get(key, run_id) for run_id in ids]
        if runs[0] is None or runs[1] is None:
            missing = ids[0] if runs[0] is None else ids[1]
            return self._missing(viewer, missing or "(none chosen)")
        base, candidate = Run.from_json(runs[0]["run"]), Run.from_json(runs[1]["run"])
        scorers = sorted(set(runs[0]["summary"]["scores"]) | set(runs[1]["summary"]["scores"]))
        items = _paired(base, candidate, scorers)
        aggregate = _aggregate(base, candidate, scorers, items)
        changed_only = params.get("changed") == "1"
        shown = [i for i in items if i["changed"]] if changed_only else items
        return self.console.render(
            "eval_compare.html",
            viewer=viewer,
            active="evals",
            a=runs[0],
            b=runs[1],
            aggregate=aggregate,
            scorers=scorers,
            items=shown,
            total=len(items),
            changed=sum(i["changed"] for i in items),
            changed_only=changed_only,
        )

    async def _get(self, key: str, run_id: str) -> dict[str, Any] | None:
        if not run_id:
            return None
        status, found = await self.console.call(key, "GET", f"{API}/{forms.quoted(run_id)}")
        return found if status == 200 and isinstance(found, dict) else None

    def _missing(self, viewer: Viewer, run_id: str) -> Reply:
        what = f"No evaluation run '{run_id}' that this key may see."
        return self.console.render("refused.html", 404, viewer=viewer, active="evals", what=what)


def _paired(a: Run, b: Run, scorers: list[str]) -> list[dict[str, Any]]:
    """The items of two runs, matched by id (the first run's order, then the second's extras),
    each marked changed when an output or a score differs."""
    left = {r.item_id: r for r in a.results}
    right = {r.item_id: r for r in b.results}
    order = [r.item_id for r in a.results] + [i for i in right if i not in left]
    paired = []
    for item_id in order:
        x, y = left.get(item_id), right.get(item_id)
        both = x is not None and y is not None
        changed = x is None or y is None or any(x.scores.get(s) != y.scores.get(s) for s in scorers)
        paired.append({"id": item_id, "a": x, "b": y, "both": both, "changed": changed})
    return paired


def _aggregate(
    a: Run, b: Run, scorers: list[str], items: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Per scorer: both means over the items they share, the change, the one-sided p-value of
    a drop (the gate's paired test), and the items that went up, down or stayed."""
    checks = gate.evaluate(b, dict.fromkeys(scorers), a, max_drop=0.0)
    shared = [i for i in items if i["both"]]
    rows = []
    for check in checks:
        moves = [
            i["b"].scores.get(check.scorer, 0.0) - i["a"].scores.get(check.scorer, 0.0)
            for i in shared
        ]
        rows.append(
            {
                "scorer": check.scorer,
                "a": check.baseline,
                "b": check.mean,
                "delta": check.delta,
                "p_value": check.p_value,
                "up": sum(m > 0 for m in moves),
                "down": sum(m < 0 for m in moves),
                "same": sum(m == 0 for m in moves),
            }
        )
    return rows
