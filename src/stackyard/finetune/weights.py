"""Tuned models' files in the database, so that every instance can serve them, not only the
machine that trained them: a LoRA adapter (a few MB) or, for full fine-tuning, a whole model
directory. A model's files go in as one tar cut into parts of ``PART`` bytes (PostgreSQL and
SQLite both refuse single values over 1 GB), and come out into a local cache folder, once.

Names are the model ids clients ask for: the job's ``ft:BASE:SUFFIX:ID`` and, for each
checkpoint of a LoRA job, ``ft:BASE:SUFFIX:ID:ckpt-step-N``. A LoRA checkpoint keeps its
optimizer state, so that an instance that takes a job over resumes it where it stopped. A full
run's checkpoints (the whole model plus optimizer state each) stay on the training machine.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import delete, func, select

from stackyard.finetune.archive import pack, unpack
from stackyard.store.db import Database
from stackyard.store.tables.finetune import WeightsPart

PART = 16 * 1024 * 1024
#: Files of a run's folders that are not needed (a checkpoint's optimizer state is kept, so
#: that another instance can resume the job).
LEFT_OUT = frozenset({"README.md"})
COMPLETE = ".complete"  # written last into an unpacked folder
CHECKPOINT = re.compile(r"^(ft:.+):ckpt-step-(\d+)$")


@dataclass(frozen=True)
class Stored:
    name: str
    job_id: str
    kind: str  # "adapter" or "model"
    step: int | None
    bytes: int


def checkpoint_name(model: str, step: int) -> str:
    return f"{model}:ckpt-step-{step}"


def kind_of(folder: Path) -> str:
    return "adapter" if (folder / "adapter_config.json").exists() else "model"


class Weights:
    def __init__(self, db: Database, cache_dir: Path) -> None:
        self.db = db
        self.cache_dir = cache_dir

    def put(self, job_id: str, name: str, folder: Path, *, step: int | None = None) -> int:
        """Store ``folder``'s files as ``name`` (replacing any earlier copy); their size."""
        kind = kind_of(folder)
        with tempfile.TemporaryFile() as packed:
            pack(folder, packed, left_out=LEFT_OUT)
            size = packed.tell()
            packed.seek(0)
            with self.db.session() as session:
                session.execute(delete(WeightsPart).where(WeightsPart.name == name))
                part = 0
                while chunk := packed.read(PART):
                    session.add(
                        WeightsPart(
                            name=name,
                            part=part,
                            job_id=job_id,
                            kind=kind,
                            step=step,
                            content=chunk,
                        )
                    )
                    session.flush()  # one part in memory at a time
                    part += 1
        return size

    def find(self, name: str) -> Stored | None:
        with self.db.session() as session:
            row = session.execute(
                select(
                    WeightsPart.job_id,
                    WeightsPart.kind,
                    WeightsPart.step,
                    func.sum(func.length(WeightsPart.content)),
                )
                .where(WeightsPart.name == name)
                .group_by(WeightsPart.job_id, WeightsPart.kind, WeightsPart.step)
            ).first()
        if row is None:
            return None
        return Stored(name, row[0], row[1], row[2], int(row[3] or 0))

    def names(self, job_id: str) -> list[str]:
        with self.db.session() as session:
            rows = session.scalars(
                select(WeightsPart.name)
                .where(WeightsPart.job_id == job_id)
                .where(WeightsPart.part == 0)
                .order_by(WeightsPart.name)
            )
            return list(rows)

    def latest_checkpoint(self, job_id: str) -> Stored | None:
        """The job's checkpoint with the highest step, if any is stored."""
        with self.db.session() as session:
            name = session.scalars(
                select(WeightsPart.name)
                .where(WeightsPart.job_id == job_id)
                .where(WeightsPart.step.is_not(None))
                .where(WeightsPart.part == 0)
                .order_by(WeightsPart.step.desc())
                .limit(1)
            ).first()
        return self.find(name) if name else None

    def fetch(self, name: str, into: Path | None = None) -> Path | None:
        """A local folder with ``name``'s files (unpacked on first use, into the cache or
        ``into``); None if not stored."""
        folder = into or self.cache_dir / _folder_name(name)
        if (folder / COMPLETE).exists():
            return folder
        with tempfile.TemporaryFile() as packed:
            parts = 0
            with self.db.session() as session:
                numbers = session.scalars(
                    select(WeightsPart.part)
                    .where(WeightsPart.name == name)
                    .order_by(WeightsPart.part)
                ).all()
                for number in numbers:  # one part in memory at a time
                    row = session.get(WeightsPart, (name, number))
                    if row is not None:
                        packed.write(row.content)
                        session.expunge(row)
                        parts += 1
            if not parts:
                return None
            packed.seek(0)
            return unpack(packed, folder, marker=COMPLETE)


def _folder_name(name: str) -> str:
    """A folder name for a model id (which holds colons), unique per id."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:80]
    return f"{readable}-{hashlib.sha256(name.encode()).hexdigest()[:10]}"
