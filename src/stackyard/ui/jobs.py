"""The console's fine-tuning pages, read from OpenAI's fine-tuning API as the logged-in key:

GET  /ui/finetune           the jobs and batches the key may see (a batch with its progress)
GET  /ui/finetune/{id}      one job: its loss curve (live while it trains), the evaluation
                            against the base model, checkpoints and events
POST /ui/finetune/{id}      pause, resume or cancel it
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stackyard.server.http import Request
from stackyard.server.routing import Reply, Routes
from stackyard.ui import charts, forms

if TYPE_CHECKING:
    from stackyard.ui.pages import Console, Viewer

PREFIX = "/ui/finetune/"
API = "/v1/fine_tuning/jobs"
BATCHES = "/v1/batches"
ACTIVE = ("validating_files", "queued", "running")
#: Enough events for a long run's curve (a metrics event a step), read 100 at a time.
MAX_EVENT_PAGES = 50


class JobPages:
    def __init__(self, console: Console) -> None:
        self.console = console

    def register(self, routes: Routes) -> None:
        page = self.console.page
        routes.add("GET", ["/ui/finetune"], page(self.jobs))
        routes.add_prefix("GET", PREFIX, page(self.job))
        routes.add_prefix("POST", PREFIX, page(self.act))

    async def jobs(self, request: Request, key: str, viewer: Viewer) -> Reply:
        status, found = await self.console.call(key, "GET", API, {"limit": 100})
        listed, batches = await self.console.call(key, "GET", BATCHES, {"limit": 100})
        return self.console.render(
            "jobs.html",
            viewer=viewer,
            active="finetune",
            jobs=forms.rows(found),
            batches=[_progress(b) for b in forms.rows(batches)] if listed == 200 else [],
            error=forms.message(found) if status != 200 else None,
        )

    async def job(
        self, request: Request, key: str, viewer: Viewer, error: str | None = None
    ) -> Reply:
        job_id = request.path.removeprefix(PREFIX).strip("/")
        call = self.console.call
        status, job = await call(key, "GET", f"{API}/{forms.quoted(job_id)}")
        if status != 200:
            what = f"No fine-tuning job '{job_id}' that this key may see."
            return self.console.render(
                "refused.html", 404, viewer=viewer, active="finetune", what=what
            )
        events = await self._events(key, job_id)
        _, checkpoints = await call(key, "GET", f"{API}/{forms.quoted(job_id)}/checkpoints")
        steps = [e["data"] for e in events if e.get("type") == "metrics" and e.get("data")]
        steps.sort(key=lambda d: d["step"])
        return self.console.render(
            "job.html",
            400 if error else 200,
            viewer=viewer,
            active="finetune",
            job=job,
            live=job["status"] in ACTIVE,
            progress=steps[-1] if steps else None,
            curve=_loss_curve(steps),
            rate=_rate_curve(steps),
            evaluation=job.get("evaluation"),
            checkpoints=forms.rows(checkpoints),
            events=events[:200],
            error=error,
        )

    async def act(self, request: Request, key: str, viewer: Viewer) -> Reply:
        job_id = request.path.removeprefix(PREFIX).strip("/")
        action = forms.form(await request.body()).get("action", "")
        if action not in ("pause", "resume", "cancel"):
            return await self.job(request, key, viewer, error=f"unknown action '{action}'")
        status, answer = await self.console.call(
            key, "POST", f"{API}/{forms.quoted(job_id)}/{action}"
        )
        if status != 200:
            return await self.job(request, key, viewer, error=forms.message(answer))
        return forms.redirect(PREFIX + forms.quoted(job_id))

    async def _events(self, key: str, job_id: str) -> list[dict[str, Any]]:
        """Every event of the job, newest first."""
        found: list[dict[str, Any]] = []
        after = None
        for _ in range(MAX_EVENT_PAGES):
            status, answer = await self.console.call(
                key, "GET", f"{API}/{forms.quoted(job_id)}/events", {"limit": 100, "after": after}
            )
            page = forms.rows(answer) if status == 200 else []
            found += page
            if not page or not answer.get("has_more"):
                break
            after = page[-1]["id"]
        return found


def _loss_curve(steps: list[dict[str, Any]]) -> Any:
    if not steps:
        return None
    order = [str(d["step"]) for d in steps]
    train = charts.Series(
        "training loss", [(str(d["step"]), float(d["train_loss"])) for d in steps]
    )
    return charts.line_chart("Training loss by step", [train], order=order)


def _rate_curve(steps: list[dict[str, Any]]) -> Any:
    measured = [d for d in steps if d.get("tokens_per_second") is not None]
    if len(measured) < 2:
        return None
    order = [str(d["step"]) for d in measured]
    rate = charts.Series(
        "tokens/s", [(str(d["step"]), float(d["tokens_per_second"])) for d in measured]
    )
    return charts.line_chart("Tokens a second by step", [rate], order=order)


def _progress(batch: dict[str, Any]) -> dict[str, Any]:
    """A batch with its lines done (answered or failed) out of its total."""
    counts = batch.get("request_counts") or {}
    done = int(counts.get("completed") or 0) + int(counts.get("failed") or 0)
    return {**batch, "done": done, "total": int(counts.get("total") or 0)}
