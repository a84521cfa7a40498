"""Measuring trace ingestion: the CPU time of a process tree and of the PostgreSQL backends
serving it, throwaway PostgreSQL databases, and the result of one measurement."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, text

POSTGRES = os.environ.get(
    "STACKYARD_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def tree_cpu(root: int) -> float:
    """CPU seconds (user + system) of a process and its descendants, the live ones and those
    that ended and were waited for."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                children.setdefault(int(_stat(int(entry.name))[1]), []).append(int(entry.name))
    ticks, todo = 0, [root]
    while todo:
        pid = todo.pop()
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = _stat(pid)
            ticks += sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
        todo.extend(children.get(pid, []))
    return ticks / TICK


def backend_cpu(database: str, exclude: set[int]) -> dict[int, float]:
    """CPU seconds of each PostgreSQL backend connected to ``database`` (by process title)."""
    marker = f" {database} ".encode()
    out: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in exclude:
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            title = (entry / "cmdline").read_bytes()
            if title.startswith(b"postgres:") and marker in title.replace(b"\0", b" "):
                out[int(entry.name)] = sum(int(v) for v in _stat(int(entry.name))[11:13]) / TICK
    return out


def cpu_spent(before: dict[int, float], after: dict[int, float]) -> float:
    """Backends that ended in between are missed (connection pools keep theirs open)."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


@contextlib.contextmanager
def postgres_database(label: str) -> Iterator[str]:
    """A fresh PostgreSQL database, dropped afterwards (as tests/conftest.py makes them)."""
    admin = create_engine(
        POSTGRES.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
    )
    name = f"bench_traces_{label}_{uuid.uuid4().hex[:8]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield POSTGRES.rsplit("/", 1)[0] + "/" + name
    finally:
        with contextlib.suppress(Exception), admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def database_name(url: str) -> str:
    return url.rsplit("/", 1)[1]


@dataclass
class Ingestion:
    system: str
    version: str
    backend: str
    traces: int
    spans: int
    stored_spans: int
    wall_s: float
    cpu_s: float
    #: PostgreSQL's backends serving the ingesting process (None on SQLite: in-process).
    db_cpu_s: float | None
    note: str = ""

    @property
    def spans_per_s(self) -> float:
        return self.stored_spans / self.wall_s if self.wall_s else 0.0

    @property
    def spans_per_cpu_s(self) -> float:
        return self.stored_spans / self.cpu_s if self.cpu_s else 0.0

    @property
    def spans_per_total_cpu_s(self) -> float:
        total = self.cpu_s + (self.db_cpu_s or 0.0)
        return self.stored_spans / total if total else 0.0

    @property
    def complete(self) -> bool:
        return self.stored_spans == self.spans
