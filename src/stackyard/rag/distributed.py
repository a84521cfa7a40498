"""A sync's heavy stages on a Ray cluster (``ray_address`` in the config): files are read,
parsed and chunked in batches of files per task, and chunks are embedded in batches on actors
that each hold the embedding model, both with Ray Data. Everything else stays where it is:
the driver (the server or the CLI) decides what changed, skips chunks whose vectors the index
already has, and writes each document atomically to the store. So a Ray sync embeds exactly
the chunks a local one would, and writes the same rows.

The workers need Stackyard (with the extras the embedding model needs) and the sources'
paths: a shared filesystem, or the local runtime (``ray_address: local``).
"""

from __future__ import annotations

import asyncio
import logging
import pickle
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stackyard import cluster
from stackyard.cluster import ray_module
from stackyard.rag.chunking import Chunk, chunk_sections
from stackyard.rag.embedder import BATCH, ModelEmbedder
from stackyard.rag.loaders import Document, Fields, LoadError, load
from stackyard.rag.models import Models
from stackyard.rag.stores.base import Vector

FILES_PER_TASK = 64
log = logging.getLogger("stackyard.rag")


def connect(address: str) -> None:
    """Join the cluster (see :func:`stackyard.cluster.connect`), quiet Ray Data's logs."""
    cluster.connect(address)
    ray = ray_module()
    ray.data.DataContext.get_current().enable_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)  # a line per dataset otherwise


@dataclass(frozen=True, slots=True)
class FileTask:
    path: str
    source_id: str
    fields: Fields


@dataclass(slots=True)
class Parsed:
    """One file's documents with their chunks (None: not chunked yet), or why it could not
    be read."""

    source_id: str
    documents: list[tuple[Document, list[Chunk] | None]]
    error: str | None = None


def parse_batch(
    tasks: list[FileTask], size: int, overlap: int, *, chunk: bool = True
) -> list[Parsed]:
    """Read, parse and (with ``chunk``) chunk files: what a Ray task runs. In process, a sync
    reads without chunking, and chunks only the documents that changed."""
    out = []
    for task in tasks:
        try:
            documents = list(load(Path(task.path), task.source_id, task.fields))
        except (LoadError, OSError) as exc:
            out.append(Parsed(task.source_id, [], str(exc)))
            continue
        chunked = [
            (d, chunk_sections(d.sections, size, overlap) if chunk else None) for d in documents
        ]
        out.append(Parsed(task.source_id, chunked))
    return out


def parse(tasks: list[FileTask], size: int, overlap: int) -> Iterator[Parsed]:
    """``parse_batch`` over the cluster, ``FILES_PER_TASK`` files per task, in any order."""
    ray = ray_module()

    def run(batch: dict[str, Any]) -> dict[str, Any]:
        chunk = [pickle.loads(item) for item in batch["task"]]
        return {"parsed": [pickle.dumps(p) for p in parse_batch(chunk, size, overlap)]}

    items = [{"task": pickle.dumps(t)} for t in tasks]
    dataset = ray.data.from_items(items).map_batches(
        run, batch_size=FILES_PER_TASK, batch_format="numpy"
    )
    for batch in dataset.iter_batches(batch_size=FILES_PER_TASK, batch_format="numpy"):
        for item in batch["parsed"]:
            yield pickle.loads(item)


class _EmbedActor:
    """Holds one embedding model (through the gateway's providers) on a Ray worker."""

    def __init__(self, models: Callable[[], Models], model: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.embedder = ModelEmbedder(models(), model)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        texts = [str(t) for t in batch["text"]]
        vectors = self.loop.run_until_complete(self.embedder.embed(texts))
        return {"at": batch["at"], "vector": np.stack(vectors).astype(np.float32)}


class RayEmbedder:
    """An :class:`~stackyard.rag.embedder.Embedder` whose ``embed`` runs on the cluster: the
    same model and revision as ``local`` (so the same index), the texts in batches on
    ``actors`` actors."""

    def __init__(self, local: ModelEmbedder, actors: int) -> None:
        self.local = local
        self.model = local.model
        #: Makes the model's deployments again on a worker (picklable).
        self.models = local.models.portable(local.model)
        self.actors = actors
        self.calls = 0

    def revision(self) -> str:
        return self.local.revision()

    async def embed(self, texts: list[str]) -> list[Vector]:
        if not texts:
            return []
        return await asyncio.to_thread(self._embed, texts)

    def _embed(self, texts: list[str]) -> list[Vector]:
        ray = ray_module()
        items = [{"at": i, "text": t} for i, t in enumerate(texts)]
        dataset = ray.data.from_items(items).map_batches(
            _EmbedActor,
            fn_constructor_kwargs={"models": self.models, "model": self.model},
            batch_size=BATCH,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=self.actors),
        )
        vectors: list[Vector | None] = [None] * len(texts)
        for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
            for at, vector in zip(batch["at"], batch["vector"], strict=True):
                vectors[int(at)] = np.asarray(vector, dtype=np.float32)
        self.calls += len(texts)
        missing = sum(v is None for v in vectors)
        if missing:
            raise RuntimeError(f"the cluster returned no vector for {missing} of the texts")
        return [v for v in vectors if v is not None]


class RayCluster:
    """The :class:`~stackyard.rag.sync.Cluster` a sync uses when ``ray_address`` is set.

    Made before any embedded store opens: Ray must load before usearch, whose extension
    exports C++ standard-library symbols that make Ray's ``std::regex`` throw (and the process
    abort) in ``ray.init`` when usearch loads first."""

    def __init__(
        self, address: str, *, min_files: int, actors: int, docs_per_batch: int = 4096
    ) -> None:
        ray_module()
        self.address = address
        self.min_files = min_files
        self.actors = actors
        self.docs_per_batch = docs_per_batch

    def parse(self, tasks: list[FileTask], size: int, overlap: int) -> Iterator[Parsed]:
        connect(self.address)
        return parse(tasks, size, overlap)

    def embedder(self, local: Any) -> Any:
        """``local`` on the cluster, if it is a gateway model's (anything else embeds here)."""
        if not isinstance(local, ModelEmbedder):
            return local
        return RayEmbedder(local, self.actors)
