"""Fine-tuned models as models: which job made one, deleting one (``DELETE /v1/models/{id}``),
and withdrawing deleted ones from serving.

A job's model is deleted by marking its job (``model_deleted_at``; the job keeps the name, as
OpenAI's do) and dropping its weights from the database; a LoRA checkpoint's model by dropping
that checkpoint's weights. Either way no instance serves it again: the instance that deletes
it withdraws it at once, the others at their supervisor's next poll (``deleted``), and no
restart brings it back, since the supervisor serves only jobs whose model is not deleted, and
a checkpoint only from its stored weights. Files on the training machine's disk stay where the
job wrote them; the job's other models (its checkpoints, or the job's own) are not touched.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Iterable
from typing import Any

from sqlalchemy import delete, select

from stackyard.finetune.jobs import ACTIVE, now
from stackyard.finetune.weights import CHECKPOINT
from stackyard.gateway.models import Made
from stackyard.gateway.router import Router
from stackyard.store.db import Database
from stackyard.store.tables.finetune import JobEvent, JobRecord, WeightsPart


def _maker(session: Any, name: str) -> JobRecord | None:
    """The job whose model (or LoRA checkpoint) ``name`` is, unless it was deleted."""
    if CHECKPOINT.match(name):
        job_id = session.scalars(
            select(WeightsPart.job_id).where(WeightsPart.name == name).where(WeightsPart.part == 0)
        ).first()
        return session.get(JobRecord, job_id) if job_id else None
    job: JobRecord | None = session.scalars(
        select(JobRecord)
        .where(JobRecord.fine_tuned_model == name)
        .where(JobRecord.model_deleted_at.is_(None))
    ).first()
    return job


class TunedModels:
    def __init__(self, db: Database, router: Router) -> None:
        self.db = db
        self.router = router

    def find(self, name: str) -> Made | None:
        """The job that made model ``name``; None when no job did, or it is deleted."""
        with self.db.session() as session:
            job = _maker(session, name)
            if job is None:
                return None
            refusal = None
            if CHECKPOINT.match(name) and job.status in ACTIVE:
                refusal = (
                    f"'{name}' is a checkpoint of {job.id}, which is {job.status} and resumes "
                    "from its checkpoints: cancel the job, or wait for it to finish, first."
                )
            return Made(job.id, job.team_id, refusal)

    async def delete(self, name: str) -> None:
        """Delete ``name`` from the store, and withdraw it here now."""
        await asyncio.to_thread(self._forget, name)
        await self.withdraw([name])

    def _forget(self, name: str) -> None:
        with self.db.session() as session:
            job = _maker(session, name)
            if job is None:
                return  # deleted meanwhile (by another request, or instance)
            if not CHECKPOINT.match(name):
                job.model_deleted_at = now()
            session.execute(delete(WeightsPart).where(WeightsPart.name == name))
            session.add(
                JobEvent(
                    job_id=job.id, level="info", message=f"Model deleted: {name}", created_at=now()
                )
            )

    def deleted(self, names: Collection[str]) -> set[str]:
        """Of ``names`` (fine-tuned models this instance serves), those deleted since."""
        checkpoints = {n for n in names if CHECKPOINT.match(n)}
        models = [n for n in names if n not in checkpoints]
        gone: set[str] = set()
        with self.db.session() as session:
            if models:
                marked = session.scalars(
                    select(JobRecord.fine_tuned_model)
                    .where(JobRecord.fine_tuned_model.in_(models))
                    .where(JobRecord.model_deleted_at.is_not(None))
                )
                gone.update(name for name in marked if name is not None)
            if checkpoints:
                stored = session.scalars(
                    select(WeightsPart.name)
                    .where(WeightsPart.name.in_(checkpoints))
                    .where(WeightsPart.part == 0)
                )
                gone.update(checkpoints - set(stored))
        return gone

    async def withdraw(self, names: Iterable[str]) -> None:
        """Serve ``names`` no more here; requests already on them finish."""
        for name in names:
            for deployment in self.router.remove(name):
                await deployment.provider.aclose()
