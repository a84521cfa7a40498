"""A sync on a Ray cluster (a local Ray runtime here) writes what a sync in process writes:
the same documents, chunks and vectors, with the same number of embedding calls, on the
embedded store and on PostgreSQL with pgvector. The embedding model is a gateway model (an
OpenAI-compatible upstream) that the Ray actors call themselves."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from stackyard.config.schema import StackyardConfig
from stackyard.gateway.rag_models import RouterModels
from stackyard.gateway.service import Gateway
from stackyard.rag.collections import Collections, CollectionSettings, SourceSpec
from stackyard.rag.distributed import FileTask, RayCluster, connect, parse_batch
from stackyard.rag.embedder import ModelEmbedder
from stackyard.rag.loaders import Fields
from stackyard.rag.stores.base import VectorStore
from stackyard.rag.sync import chunk_digest, sync
from tests.conftest import require_local_models
from tests.fakes.openai_upstream import FakeOpenAI

FILES = {
    f"notes/topic-{i:02d}.md": f"# Topic {i}\n\nThe number {i} is {('even', 'odd')[i % 2]}.\n\n"
    f"## Details\n\n{'More words about it. ' * (i + 3)}"
    for i in range(10)
}
FILES["notes/shared.md"] = "# Shared\n\nThe number 0 is even."  # a chunk text seen before
FILES["notes/rows.jsonl"] = '{"text": "first row"}\n{"text": "second row"}\n'
FILES["notes/broken.jsonl"] = "{not json\n"


def write(folder: Path) -> None:
    for name, text in FILES.items():
        path = folder.parent / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_parse_batch_reads_chunks_and_reports_each_file(tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    write(folder)
    tasks = [
        FileTask(str(tmp_path / name), name, Fields())
        for name in ("notes/topic-03.md", "notes/rows.jsonl", "notes/broken.jsonl")
    ]
    topic, rows, broken = parse_batch(tasks, 16, 4)
    (document, chunks) = topic.documents[0]
    assert document.source_id == "notes/topic-03.md"
    assert chunks is not None
    assert len(chunks) > 1
    assert [c.position for c in chunks] == list(range(len(chunks)))
    assert [d.source_id for d, _ in rows.documents] == ["notes/rows.jsonl#1", "notes/rows.jsonl#2"]
    assert broken.documents == []
    assert broken.error is not None
    (unchunked,) = parse_batch(tasks[:1], 16, 4, chunk=False)  # in process: chunked later
    assert [(d.source_id, c) for d, c in unchunked.documents] == [("notes/topic-03.md", None)]


@pytest.fixture(scope="module")
def ray_runtime() -> Iterator[None]:
    import ray

    connect("local")
    yield
    ray.shutdown()


def contents(store: VectorStore, index: str, dimension: int = 8) -> dict[str, Any]:
    """Every document's digest and its chunks' positions, texts and vectors."""
    out: dict[str, Any] = {}
    probe = np.ones(dimension, dtype=np.float32) / np.sqrt(dimension)
    for source, state in sorted(store.documents(index).items()):
        hits = store.dense(index, probe, 100, {"source": source})
        texts = sorted((h.position, h.text) for h in hits)
        vectors = store.vectors_for(index, [chunk_digest(t) for _, t in texts])
        out[source] = (state.digest, texts, [vectors[chunk_digest(t)].tolist() for _, t in texts])
    return out


@pytest.mark.slow
async def test_a_sync_on_ray_writes_what_a_sync_in_process_writes(
    ray_runtime: None,
    any_store: VectorStore,
    collections: Collections,
    fake_openai: FakeOpenAI,
    tmp_path: Path,
) -> None:
    folder = tmp_path / "notes"
    write(folder)
    upstream = f"ray-embed-{any_store.kind}"
    config = StackyardConfig.model_validate(
        {
            "models": [
                {
                    "name": "embed",
                    "provider": "openai-compatible",
                    "model": "text-embedding-3-small",
                    "api_base": fake_openai.base_url(upstream),
                }
            ]
        }
    )
    gateway = Gateway(config)
    cluster = RayCluster("local", min_files=1, actors=1)
    settings = CollectionSettings(
        embedding_model="embed",
        chunk_size=16,
        chunk_overlap=4,
        sources=[SourceSpec(path=str(folder))],
    )
    here = collections.create("here", settings, None)
    there = collections.create("there", settings, None)
    try:
        fake_openai.reset()
        local = await sync(
            here, any_store, ModelEmbedder(RouterModels(gateway.router), "embed"), collections
        )
        embedded_here = sum(len(r.body["input"]) for r in fake_openai.requests_for(upstream))
        fake_openai.reset()
        on_ray = await sync(
            there,
            any_store,
            ModelEmbedder(RouterModels(gateway.router), "embed"),
            collections,
            cluster=cluster,
        )
        embedded_there = sum(len(r.body["input"]) for r in fake_openai.requests_for(upstream))
        # An unchanged folder embeds nothing (only the broken file is read again).
        again = await sync(
            collections.get("there"),
            any_store,
            ModelEmbedder(RouterModels(gateway.router), "embed"),
            collections,
            cluster=cluster,
        )
    finally:
        await gateway.aclose()
    assert (on_ray.added, on_ray.chunks_embedded, on_ray.chunks_written) == (
        local.added,
        local.chunks_embedded,
        local.chunks_written,
    )
    assert local.added == 13  # ten topics, shared.md and two rows
    assert local.chunks_reused == on_ray.chunks_reused > 0  # shared.md's chunk
    assert embedded_there == embedded_here == local.chunks_embedded
    assert [f["source"] for f in on_ray.failed] == [f["source"] for f in local.failed]
    assert [f["source"] for f in local.failed] == ["notes/broken.jsonl"]
    assert contents(any_store, on_ray.index) == contents(any_store, local.index)
    assert (again.unchanged, again.chunks_embedded) == (13, 0)


@pytest.mark.slow
async def test_ray_actors_load_the_in_process_embedding_model(
    ray_runtime: None, embedded: VectorStore, collections: Collections, tmp_path: Path
) -> None:
    require_local_models()
    folder = tmp_path / "notes"
    write(folder)
    config = StackyardConfig.model_validate(
        {"models": [{"name": "minilm", "provider": "local", "model": "all-minilm-l6-v2"}]}
    )
    gateway = Gateway(config)
    settings = CollectionSettings(embedding_model="minilm", sources=[SourceSpec(path=str(folder))])
    here = collections.create("here", settings, None)
    there = collections.create("there", settings, None)
    try:
        local = await sync(
            here, embedded, ModelEmbedder(RouterModels(gateway.router), "minilm"), collections
        )
        cluster = RayCluster("local", min_files=1, actors=1)
        on_ray = await sync(
            there,
            embedded,
            ModelEmbedder(RouterModels(gateway.router), "minilm"),
            collections,
            cluster=cluster,
        )
    finally:
        await gateway.aclose()
    assert on_ray.chunks_embedded == local.chunks_embedded > 13
    ours = contents(embedded, local.index, 384)
    theirs = contents(embedded, on_ray.index, 384)
    assert ours.keys() == theirs.keys()
    for source, (digest, texts, vectors) in ours.items():
        assert theirs[source][:2] == (digest, texts)
        np.testing.assert_allclose(theirs[source][2], vectors, atol=1e-5)
