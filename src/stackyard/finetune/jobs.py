"""Fine-tuning jobs in the database, in OpenAI's shapes: the job, its events and checkpoints.

Statuses: ``validating_files`` then ``queued`` (waiting for a worker), ``running``, and one of
``succeeded``, ``failed`` or ``cancelled``. A paused job is ``queued`` with ``paused: true``
(OpenAI's clients know no ``paused`` status) until it is resumed.
"""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select, update

from stackyard.finetune.settings import Settings, base_learning_rate
from stackyard.finetune.weights import checkpoint_name
from stackyard.store.db import Database
from stackyard.store.tables.base import aware
from stackyard.store.tables.finetune import JobEvent, JobRecord

ACTIVE = ("validating_files", "queued", "running")
FINISHED = ("succeeded", "failed", "cancelled")
STALE_AFTER = 30.0  # seconds without a heartbeat before another worker may take a job over

Rows = list[dict[str, Any]]


class JobNotFound(LookupError):
    pass


def _ts(moment: dt.datetime | None) -> int | None:
    if moment is None:
        return None
    return int(aware(moment).timestamp())


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def model_name(model: str, suffix: str, job_id: str) -> str:
    """The model id a job's result is served as: ``ft:BASE:SUFFIX:ID``."""
    return f"ft:{model}:{suffix}:{job_id.removeprefix('ftjob-')[:12]}"


def public(job: JobRecord) -> dict[str, Any]:
    settings = Settings.model_validate(job.settings)
    multiplier = settings.learning_rate / base_learning_rate(settings.tuning)
    hyper = {
        "batch_size": settings.batch_size,
        "learning_rate_multiplier": round(multiplier, 6),
        "n_epochs": settings.n_epochs,
    }
    return {
        "id": job.id,
        "object": "fine_tuning.job",
        "created_at": _ts(job.created_at),
        "error": job.error,
        "fine_tuned_model": job.fine_tuned_model,
        "finished_at": _ts(job.finished_at),
        "hyperparameters": hyper,
        "model": job.model,
        "organization_id": job.team_id or "org-stackyard",
        "result_files": job.result_files or [],
        "seed": settings.seed,
        "status": job.status,
        "trained_tokens": job.trained_tokens,
        "training_file": job.training_file,
        "validation_file": job.validation_file,
        "estimated_finish": _ts(job.estimated_finish),
        "integrations": None,
        "metadata": job.metadata_,
        "method": {
            "type": "supervised",
            "supervised": {"hyperparameters": hyper},
        },
        # Ours: the LoRA settings, the evaluation against the base, and a paused flag.
        "settings": job.settings,
        "evaluation": (job.result or {}).get("evaluation"),
        # True from the pause request on; the job is queued once it took effect.
        "paused": job.control == "pause",
    }


class Jobs:
    def __init__(self, db: Database, data_dir: Path) -> None:
        self.db = db
        self.data_dir = data_dir

    def out_dir(self, job_id: str) -> Path:
        return self.data_dir / job_id

    def create(
        self,
        *,
        model: str,
        training_file: str,
        validation_file: str | None,
        settings: Settings,
        suffix: str,
        metadata: dict[str, Any] | None,
        team_id: str | None,
    ) -> dict[str, Any]:
        job = JobRecord(
            id="ftjob-" + uuid.uuid4().hex[:24],
            model=model,
            training_file=training_file,
            validation_file=validation_file,
            settings=settings.model_dump(),
            suffix=suffix,
            status="validating_files",
            result_files=[],
            metadata_=metadata,
            team_id=team_id,
            created_at=now(),
        )
        with self.db.session() as session:
            session.add(job)
            session.flush()
            self._event(session, job.id, "info", f"Created fine-tuning job: {job.id}")
            return public(job)

    def _find(self, session: Any, job_id: str, team_id: str | None, admin: bool) -> JobRecord:
        job = session.get(JobRecord, job_id)
        if job is None or not (admin or job.team_id == team_id):
            raise JobNotFound(job_id)
        return job  # type: ignore[no-any-return]

    def get(self, job_id: str, *, team_id: str | None = None, admin: bool = True) -> dict[str, Any]:
        with self.db.session() as session:
            return public(self._find(session, job_id, team_id, admin))

    def record(self, job_id: str) -> JobRecord:
        with self.db.session() as session:
            return self._find(session, job_id, None, True)

    def page(
        self,
        *,
        team_id: str | None = None,
        admin: bool = True,
        after: str | None = None,
        limit: int = 20,
    ) -> tuple[Rows, bool]:
        with self.db.session() as session:
            query = select(JobRecord).order_by(JobRecord.created_at.desc(), JobRecord.id.desc())
            if not admin:
                query = query.where(JobRecord.team_id == team_id)
            if after:
                anchor = session.get(JobRecord, after)
                if anchor is not None:
                    query = query.where(
                        or_(
                            JobRecord.created_at < anchor.created_at,
                            (JobRecord.created_at == anchor.created_at)
                            & (JobRecord.id < anchor.id),
                        )
                    )
            found = list(session.scalars(query.limit(limit + 1)))
            return [public(j) for j in found[:limit]], len(found) > limit

    def events(
        self,
        job_id: str,
        *,
        team_id: str | None = None,
        admin: bool = True,
        after: int | None = None,
        limit: int = 20,
    ) -> tuple[Rows, bool]:
        """Newest first, as OpenAI lists them; ``after``: an event id seen before."""
        with self.db.session() as session:
            self._find(session, job_id, team_id, admin)
            query = select(JobEvent).where(JobEvent.job_id == job_id)
            if after is not None:
                query = query.where(JobEvent.seq < after)
            rows = list(session.scalars(query.order_by(JobEvent.seq.desc()).limit(limit + 1)))
            return [_event(e) for e in rows[:limit]], len(rows) > limit

    def checkpoints(self, job_id: str, *, team_id: str | None = None, admin: bool = True) -> Rows:
        with self.db.session() as session:
            job = self._find(session, job_id, team_id, admin)
            rows = session.scalars(
                select(JobEvent)
                .where(JobEvent.job_id == job_id)
                .where(JobEvent.message.like("Checkpoint written%"))
                .order_by(JobEvent.seq.desc())
            )
            base = job.fine_tuned_model or model_name(job.model, job.suffix, job.id)
            return [
                {
                    "id": f"ftckpt-{job.id[6:]}-{e.data['step']}",
                    "object": "fine_tuning.job.checkpoint",
                    "created_at": _ts(e.created_at),
                    "fine_tuned_model_checkpoint": checkpoint_name(base, e.data["step"]),
                    "fine_tuning_job_id": job.id,
                    "metrics": {"step": float(e.data["step"]), **(e.data.get("metrics") or {})},
                    "step_number": e.data["step"],
                }
                for e in rows
                if e.data
            ]

    def control(
        self, job_id: str, action: str, *, team_id: str | None = None, admin: bool = True
    ) -> dict[str, Any]:
        """``cancel``, ``pause`` or ``resume``; raises ValueError when the job's state does not
        allow it."""
        with self.db.session() as session:
            job = self._find(session, job_id, team_id, admin)
            if job.status in FINISHED:
                raise ValueError(f"the job has {job.status}; it cannot be {action}d")
            if action == "cancel":
                job.control = "cancel"
                if job.status in ("validating_files", "queued") and job.worker is None:
                    job.status = "cancelled"
                    job.finished_at = now()
                self._event(session, job.id, "info", "Cancellation requested")
            elif action == "pause":
                if job.control == "pause":
                    raise ValueError("the job is already paused")
                job.control = "pause"
                self._event(session, job.id, "info", "Pause requested")
            elif action == "resume":
                if job.control != "pause":
                    raise ValueError("the job is not paused")
                job.control = None
                self._event(session, job.id, "info", "Resumed")
            return public(job)

    # -- for the worker and the supervisor -------------------------------------------------

    def claimable(self) -> list[str]:
        """Jobs a worker should run: waiting, or running with a stale heartbeat."""
        stale = now() - dt.timedelta(seconds=STALE_AFTER)
        with self.db.session() as session:
            rows = session.scalars(
                select(JobRecord.id)
                .where(JobRecord.status.in_(ACTIVE))
                .where(or_(JobRecord.control.is_(None), JobRecord.control == "cancel"))
                .where(or_(JobRecord.heartbeat_at.is_(None), JobRecord.heartbeat_at < stale))
                .order_by(JobRecord.created_at)
            )
            return list(rows)

    def claim(self, job_id: str, worker: str) -> bool:
        """Take a job for ``worker`` (atomic: one of several instances wins)."""
        stale = now() - dt.timedelta(seconds=STALE_AFTER)
        with self.db.session() as session:
            result = session.execute(
                update(JobRecord)
                .where(JobRecord.id == job_id)
                .where(JobRecord.status.in_(ACTIVE))
                .where(or_(JobRecord.heartbeat_at.is_(None), JobRecord.heartbeat_at < stale))
                .values(worker=worker, heartbeat_at=now())
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def beat(self, job_id: str, **fields: Any) -> str | None:
        """Refresh the heartbeat (and set ``fields``); the owner's control request."""
        with self.db.session() as session:
            job = session.get(JobRecord, job_id)
            if job is None:
                return "cancel"
            job.heartbeat_at = now()
            for key, value in fields.items():
                setattr(job, key, value)
            return job.control

    def release(self, job_id: str, **fields: Any) -> None:
        with self.db.session() as session:
            job = session.get(JobRecord, job_id)
            if job is not None:
                job.worker = None
                job.heartbeat_at = None
                for key, value in fields.items():
                    setattr(job, key, value)

    def event(
        self, job_id: str, level: str, message: str, data: dict[str, Any] | None = None
    ) -> None:
        with self.db.session() as session:
            self._event(session, job_id, level, message, data)

    @staticmethod
    def _event(
        session: Any, job_id: str, level: str, message: str, data: dict[str, Any] | None = None
    ) -> None:
        session.add(
            JobEvent(job_id=job_id, level=level, message=message, data=data, created_at=now())
        )

    def succeeded(self) -> list[JobRecord]:
        """Succeeded jobs whose model is served (not deleted)."""
        with self.db.session() as session:
            return list(
                session.scalars(
                    select(JobRecord)
                    .where(JobRecord.status == "succeeded")
                    .where(JobRecord.fine_tuned_model.is_not(None))
                    .where(JobRecord.model_deleted_at.is_(None))
                )
            )


def _event(e: JobEvent) -> dict[str, Any]:
    return {
        "id": f"ftevent-{e.seq}",
        "object": "fine_tuning.job.event",
        "created_at": _ts(e.created_at),
        "level": e.level,
        "message": e.message,
        "data": e.data,
        "type": "metrics" if e.data and e.data.get("type") == "metrics" else "message",
    }
