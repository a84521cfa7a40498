"""Shared pieces for the RAG tests: a small, deterministic embedding model (words hashed into
64 dimensions: similar texts get similar vectors), collections on a fresh SQLite store."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from stackyard.rag.collections import Collections
from stackyard.rag.stores.base import Vector, VectorStore
from stackyard.rag.stores.embedded import EmbeddedStore
from stackyard.store.db import Database
from tests.conftest import postgres_database
from tests.fakes.openai_upstream import FakeOpenAI

WORD = re.compile(r"\w+")


class HashingEmbedder:
    """Bag of hashed words, normalised. Counts every text it embeds."""

    def __init__(self, model: str = "hashing", dimension: int = 64, revision: str = "r1"):
        self.model = model
        self.dimension = dimension
        self._revision = revision
        self.texts: list[str] = []

    def revision(self) -> str:
        return self._revision

    async def embed(self, texts: list[str]) -> list[Vector]:
        self.texts.extend(texts)
        return [self.vector(t) for t in texts]

    def vector(self, text: str) -> Vector:
        v = np.zeros(self.dimension, dtype=np.float32)
        for word in WORD.findall(text.lower()):
            h = int(hashlib.md5(word.encode()).hexdigest()[:8], 16)
            v[h % self.dimension] += 1.0
        norm = float(np.linalg.norm(v))
        return v / norm if norm else v


@pytest.fixture
def embedder() -> HashingEmbedder:
    return HashingEmbedder()


@pytest.fixture
def collections(tmp_path: Path) -> Iterator[Collections]:
    db = Database(f"sqlite:///{tmp_path / 'main.db'}")
    db.migrate()
    yield Collections(db)
    db.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """The main database, migrated, on each of SQLite and PostgreSQL (a fresh one)."""
    if request.param == "sqlite":
        made = Database(f"sqlite:///{tmp_path / 'main.db'}")
        made.migrate()
        yield made
        made.dispose()
        return
    for url in postgres_database():
        made = Database(url)
        made.migrate()
        yield made
        made.dispose()


@pytest.fixture(params=["embedded", "pgvector"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VectorStore]:
    """Each vector store in turn (pgvector on a fresh database)."""
    made: VectorStore
    if request.param == "embedded":
        made = EmbeddedStore(tmp_path / "rag.db")
    else:
        from stackyard.rag.stores.pgvector import PgVectorStore

        made = PgVectorStore(request.getfixturevalue("pgvector_database"))
    yield made
    made.close()


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[EmbeddedStore]:
    store = EmbeddedStore(tmp_path / "rag.db")
    yield store
    store.close()


def cli_config(
    tmp_path: Path, fake: FakeOpenAI, upstream: str, *models: Mapping[str, object]
) -> Path:
    """A config file for ``stackyard rag`` commands: an ``embed`` model on the fake upstream
    (deployment ``upstream``), any other ``models``, and a SQLite database in ``tmp_path``."""
    embed = {
        "name": "embed",
        "provider": "openai-compatible",
        "model": "text-embedding-3-small",
        "api_base": fake.base_url(upstream),
    }
    config = tmp_path / "stackyard.yaml"
    config.write_text(
        yaml.safe_dump(
            {"models": [embed, *models], "database_url": f"sqlite:///{tmp_path / 'main.db'}"}
        )
    )
    return config


def rag_command(config: Path) -> Callable[..., str]:
    """``run(*args, code=0)``: ``stackyard rag ARGS --config CONFIG``, its exit code checked,
    its output returned."""
    from stackyard.cli import main

    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(main, ["rag", *args, "--config", str(config)])
        assert result.exit_code == code, result.output
        return result.output

    return run
