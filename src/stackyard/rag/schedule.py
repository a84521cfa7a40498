"""Scheduled syncs: the server syncs each collection whose settings say ``sync_every``
(seconds) once its last sync is that old. Several instances may each start one; syncs of a
collection may overlap safely (each document is replaced atomically)."""

from __future__ import annotations

import asyncio
import logging
import time

from stackyard.rag.collections import Collection
from stackyard.rag.service import RAG

TICK = 15.0  # seconds between checks
log = logging.getLogger("stackyard.rag")


def describe(collection: Collection) -> str:
    """A collection as the log names it: names repeat across teams, so with its team."""
    owner = f"team {collection.team_id}" if collection.team_id else "the master key's"
    return f"{collection.name} ({owner}, {collection.id})"


def due(collection: Collection, now: float) -> bool:
    every = collection.settings.sync_every
    if every is None or not collection.settings.sources:
        return False
    finished = (collection.last_sync or {}).get("finished_at")
    return not isinstance(finished, int | float) or now - finished >= every


async def run_schedule(rag: RAG, *, tick: float = TICK) -> None:
    """Sync due collections, one at a time, forever (cancel to stop)."""
    while True:
        for collection in list(rag.collections.by_team_name.values()):
            if not due(collection, time.time()):
                continue
            where = describe(collection)
            try:
                report = await rag.sync(collection)
            except Exception:  # a bad source must not stop the others' schedules
                log.exception("scheduled sync of %s failed", where)
                continue
            log.info(
                "scheduled sync of %s: %d added, %d changed, %d deleted, %d embedded",
                where,
                report.added,
                report.changed,
                report.deleted,
                report.chunks_embedded,
            )
        await asyncio.sleep(tick)
