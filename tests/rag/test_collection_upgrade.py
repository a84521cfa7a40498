"""The upgrade to per-team collection names: the migration keeps every collection and goes
back only while no two teams share a name (SQLite and PostgreSQL); an index named after the
collection's name alone, as all were before, stays its index with nothing re-embedded, while
new indexes carry the collection's id, so another team's collection of that name never
shares one."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from stackyard.rag.collections import Collections, CollectionSettings, RagError, SourceSpec
from stackyard.rag.stores.base import StoreError, VectorStore
from stackyard.rag.sync import sync
from stackyard.store.db import MIGRATIONS, Database
from stackyard.store.tables.rag import CollectionRecord
from tests.rag.conftest import HashingEmbedder

REVISION = "0017"  # per-team collection names


def migrate(db: Database, action: str, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        getattr(command, action)(config, revision)


def before_namespaces() -> str:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    revision = ScriptDirectory.from_config(config).get_revision(REVISION)
    assert revision is not None
    assert isinstance(revision.down_revision, str)
    return revision.down_revision


def test_the_migration_keeps_collections_and_goes_back_while_names_are_unique(
    database: Database,
) -> None:
    before = before_namespaces()
    migrate(database, "downgrade", before)
    now = dt.datetime.now(dt.UTC)
    settings = CollectionSettings(embedding_model="embed").model_dump()

    def row(
        id_: str, name: str, team_id: str | None, index: str | None = None
    ) -> dict[str, object]:
        return {
            "id": id_,
            "name": name,
            "team_id": team_id,
            "settings": settings,
            "active_index": index,
            "created_at": now,
            "updated_at": now,
        }

    table = CollectionRecord
    with database.engine.begin() as connection:
        connection.execute(insert(table), [row("col_a", "docs", "team_red", "docs@embed:r1")])
        connection.execute(insert(table), [row("col_b", "wiki", None, "wiki@embed:r1")])
    with pytest.raises(IntegrityError), database.engine.begin() as connection:
        connection.execute(insert(table), [row("col_c", "docs", "team_blue")])  # names were global

    migrate(database, "upgrade", "head")
    collections = Collections(database)
    collections.load()
    kept = {key: c.active_index for key, c in collections.by_team_name.items()}
    assert kept == {("team_red", "docs"): "docs@embed:r1", (None, "wiki"): "wiki@embed:r1"}
    blue = collections.create("docs", CollectionSettings(embedding_model="embed"), "team_blue")
    with pytest.raises(RagError) as taken:
        collections.create("wiki", CollectionSettings(embedding_model="embed"), None)
    assert taken.value.status == 409

    with pytest.raises(RuntimeError, match="several teams have docs"):
        migrate(database, "downgrade", before)
    collections.delete(blue)
    migrate(database, "downgrade", before)
    with pytest.raises(IntegrityError), database.engine.begin() as connection:
        connection.execute(insert(table), [row("col_d", "docs", "team_blue")])
    migrate(database, "upgrade", "head")
    assert collections.get("docs", "team_red").id == "col_a"


async def test_an_index_named_before_namespaces_is_kept_without_re_embedding(
    tmp_path: Path, collections: Collections, any_store: VectorStore
) -> None:
    folder = tmp_path / "handbook"
    folder.mkdir()
    for i in range(3):
        (folder / f"page{i}.md").write_text(f"# Page {i}\n\nThe handbook's page number {i}.\n")
    settings = CollectionSettings(embedding_model="hashing", sources=[SourceSpec(path=str(folder))])
    red = collections.create("docs", settings, "team_red")
    legacy = "docs@hashing:r1"  # what its index was named before names were per team
    red = collections.update(red, active_index=legacy)
    embedder = HashingEmbedder()
    first = await sync(red, any_store, embedder, collections)
    assert (first.index, first.added, first.swapped) == (legacy, 3, False)
    embedder.texts.clear()
    again = await sync(collections.current(red), any_store, embedder, collections)
    assert (again.index, again.unchanged, again.chunks_embedded) == (legacy, 3, 0)
    assert embedder.texts == []
    assert collections.current(red).active_index == legacy

    others = tmp_path / "others"
    others.mkdir()
    (others / "menu.md").write_text("# Menu\n\nSoup on Tuesdays.\n")
    elsewhere = settings.model_copy(update={"sources": [SourceSpec(path=str(others))]})
    blue = collections.create("docs", elsewhere, "team_blue")
    own = collections.create("docs", elsewhere, None)
    for other in (blue, own):  # the same name, model and revision: still an index of its own
        report = await sync(other, any_store, HashingEmbedder(), collections)
        assert (report.index, report.added, report.deleted) == (
            f"docs#{other.id}@hashing:r1",
            1,
            0,
        )
        assert sorted(any_store.documents(report.index)) == ["others/menu.md"]
    assert sorted(any_store.documents(legacy)) == [f"handbook/page{i}.md" for i in range(3)]

    new_model = HashingEmbedder("hashing", 32, revision="r2")  # a new model: an index by id
    swapped = await sync(collections.current(red), any_store, new_model, collections)
    assert swapped.swapped
    assert collections.current(red).active_index == f"docs#{red.id}@hashing:r2"
    with pytest.raises(StoreError, match="no index"):
        any_store.count(legacy)
