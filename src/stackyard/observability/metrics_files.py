"""The directory of the workers' metric files: a fresh one per ``stackyard serve``.

Counters in prometheus-client's multiprocess mode are the sum of every file in the directory,
so a directory kept from an earlier run would add that run's counts to this one's. Each start
makes its own, ``stackyard-metrics/<pid>-<random>`` beside the config file (where the spend
journal lives; the system's temporary directory if that one cannot be written), removes it when
the server stops, and removes those left by servers that are no longer running (killed, or a
machine that lost power). Two servers started from the same directory each have their own.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from pathlib import Path

log = logging.getLogger("stackyard.observability")

FOLDER = "stackyard-metrics"


def alive(pid: int) -> bool:
    """Whether a process ``pid`` runs (a reused pid reads as alive: its files stay a while)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale(parent: Path) -> None:
    """Remove the directories of servers that are not running any more."""
    try:
        entries = list(parent.iterdir())
    except OSError:
        return
    for entry in entries:
        pid, _, _ = entry.name.partition("-")
        if not pid.isdigit() or int(pid) == os.getpid() or alive(int(pid)):
            continue
        shutil.rmtree(entry, ignore_errors=True)


def fresh(base: Path) -> Path:
    """An empty directory for this server's metric files, under ``base`` if it can be."""
    for parent in (base / FOLDER, Path(tempfile.gettempdir()) / FOLDER):
        try:
            parent.mkdir(parents=True, exist_ok=True)
            remove_stale(parent)
            return Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=parent))
        except OSError as exc:
            log.warning("cannot keep metric files in %s (%s)", parent, exc)
    raise RuntimeError("no directory can be written for the workers' metric files")


def remove(path: Path) -> None:
    """The server has stopped: its files are no longer needed."""
    shutil.rmtree(path, ignore_errors=True)
    with contextlib.suppress(OSError):
        path.parent.rmdir()  # only when no other server uses it
