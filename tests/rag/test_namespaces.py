"""Collection names are per team: team red and team blue may each have "docs" and neither
learns of the other's; a key's names are its team's; the master key's are its own collections
unless it names a team. Through the registry, the service, the chat stage's retrieval, the
scheduled syncs and the evaluation, with a real embedding model behind the gateway's router
(the fake OpenAI upstream)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError

from stackyard.auth.principal import MASTER, Principal
from stackyard.config.schema import StackyardConfig
from stackyard.errors import APIError
from stackyard.gateway.rag_models import RouterModels
from stackyard.gateway.service import Gateway
from stackyard.rag.augment import retrieve
from stackyard.rag.chunking import Section
from stackyard.rag.collections import Collection, Collections, CollectionSettings, RagError
from stackyard.rag.evaluate import evaluate
from stackyard.rag.loaders import Document
from stackyard.rag.namespaces import namespace, resolve
from stackyard.rag.retrieve import QuerySpec
from stackyard.rag.schedule import run_schedule
from stackyard.rag.service import RAG
from stackyard.rag.stores.base import StoreError
from stackyard.store.db import Database
from stackyard.store.tables.base import new_id
from stackyard.store.tables.rag import CollectionRecord
from tests.fakes.openai_upstream import FakeOpenAI

NEW_ID = "stackyard.rag.collections.new_id"  # where the registry makes a collection's id
RED = Principal(key_id="key_red", team_id="team_red")
BLUE = Principal(key_id="key_blue", team_id="team_blue")
PLAN = "Red team launch plan: the rocket flies on Tuesday."
MENU = "Blue team lunch menu: soup on Tuesday."
EVERY_WORD = "red blue team launch plan rocket flies lunch menu soup tuesday"


@pytest.fixture
async def rag(tmp_path: Path, fake_openai: FakeOpenAI) -> AsyncIterator[RAG]:
    config = StackyardConfig.model_validate(
        {
            "models": [
                {
                    "name": "embed",
                    "provider": "openai-compatible",
                    "model": "text-embedding-3-small",
                    "api_base": fake_openai.base_url("rag-namespaces-embed"),
                },
                {
                    "name": "chat",
                    "provider": "openai-compatible",
                    "api_base": fake_openai.base_url("rag-namespaces-chat"),
                },
            ],
            "rag": {"embedding_model": "embed"},
        }
    )
    gateway = Gateway(config)
    db = Database(f"sqlite:///{tmp_path / 'main.db'}")
    db.migrate()
    made = RAG(config.rag, db, RouterModels(gateway.router), base_dir=tmp_path)
    yield made
    made.close()
    await gateway.aclose()
    db.dispose()


def doc(key: str, text: str) -> Document:
    return Document(key, [Section(text, 0)], {})


async def two_teams_docs(rag: RAG) -> tuple[Collection, Collection]:
    """Team red's and team blue's "docs", each with one document of its own."""
    red = rag.create("docs", {}, "team_red")
    blue = rag.create("docs", {}, "team_blue")
    await rag.upsert(red, [doc("plan", PLAN)])
    await rag.upsert(blue, [doc("menu", MENU)])
    return rag.collections.current(red), rag.collections.current(blue)


async def sources(rag: RAG, collection: Collection, mode: str = "hybrid") -> list[str]:
    spec = QuerySpec(query=EVERY_WORD, mode=mode, top_k=10)  # type: ignore[arg-type]
    return [r.hit.source_id for r in await rag.query(collection, spec)]


async def test_two_teams_each_have_docs_and_search_only_their_own(rag: RAG) -> None:
    red, blue = await two_teams_docs(rag)
    assert red.id != blue.id
    assert None not in (red.active_index, blue.active_index)
    assert red.active_index != blue.active_index  # never one index for both
    for principal, mine in ((RED, red), (BLUE, blue)):
        assert resolve(rag.collections, principal, "docs").id == mine.id
        listed = [c for c in rag.collections.by_team_name.values() if c.team_id == mine.team_id]
        assert [c.id for c in listed] == [mine.id]
    for mode in ("keyword", "dense", "hybrid"):
        assert await sources(rag, resolve(rag.collections, RED, "docs"), mode) == ["plan"]
        assert await sources(rag, resolve(rag.collections, BLUE, "docs"), mode) == ["menu"]


async def test_deleting_one_teams_collection_leaves_the_others(rag: RAG) -> None:
    red, blue = await two_teams_docs(rag)
    assert red.active_index is not None
    assert blue.active_index is not None
    await rag.drop(resolve(rag.collections, RED, "docs"))
    with pytest.raises(RagError) as gone:
        resolve(rag.collections, RED, "docs")
    assert gone.value.status == 404
    store = rag.store("default")
    with pytest.raises(StoreError, match="no index"):
        store.count(red.active_index)
    assert store.count(blue.active_index) == (1, 1)
    assert resolve(rag.collections, BLUE, "docs").id == blue.id
    assert await sources(rag, blue) == ["menu"]


def test_a_name_another_team_has_gives_no_hint(rag: RAG) -> None:
    rag.create("secret-plans", {}, "team_red")
    with pytest.raises(RagError) as theirs:
        resolve(rag.collections, BLUE, "secret-plans")
    with pytest.raises(RagError) as nobodys:
        resolve(rag.collections, BLUE, "nobodys-plans")
    assert (theirs.value.status, theirs.value.code) == (404, "collection_not_found")
    assert str(theirs.value) == "no collection named 'secret-plans'"
    assert str(nobodys.value) == "no collection named 'nobodys-plans'"  # the same answer
    mine = rag.create("secret-plans", {}, "team_blue")  # no 409: red's name is not in the way
    assert (mine.name, mine.team_id) == ("secret-plans", "team_blue")
    with pytest.raises(RagError) as again:
        rag.create("secret-plans", {}, "team_blue")  # its own name is taken, though
    assert (again.value.status, str(again.value)) == (
        409,
        "a collection named 'secret-plans' exists",
    )


def test_a_key_names_only_its_own_team(rag: RAG) -> None:
    rag.create("docs", {}, "team_red")
    for name in ("docs", "nothing"):  # refused alike, whether or not red has the name
        with pytest.raises(RagError) as refused:
            resolve(rag.collections, BLUE, name, "team_red")
        assert (refused.value.status, refused.value.code) == (403, "permission_denied")
    assert resolve(rag.collections, RED, "docs", "team_red").team_id == "team_red"
    with pytest.raises(RagError) as teamless:
        namespace(Principal(key_id="key_lost"))  # never the master key's namespace
    assert teamless.value.status == 403


def test_the_master_key_means_its_own_unless_it_names_a_team(rag: RAG) -> None:
    red = rag.create("docs", {}, "team_red")
    blue = rag.create("docs", {}, "team_blue")
    with pytest.raises(RagError) as missing:
        resolve(rag.collections, MASTER, "docs")  # never one of the teams' picked for it
    assert str(missing.value) == (
        "no collection named 'docs' among the master key's own "
        "(elsewhere: team team_blue, team team_red)"
    )
    assert resolve(rag.collections, MASTER, "docs", "team_red").id == red.id
    assert resolve(rag.collections, MASTER, "docs", "team_blue").id == blue.id
    own = rag.create("docs", {}, None)
    assert resolve(rag.collections, MASTER, "docs").id == own.id
    assert resolve(rag.collections, MASTER, "docs", "").id == own.id
    with pytest.raises(RagError) as elsewhere:
        resolve(rag.collections, MASTER, "docs", "team_green")
    assert str(elsewhere.value) == (
        "no collection named 'docs' in team team_green "
        "(elsewhere: the master key's own, team team_blue, team team_red)"
    )


async def test_a_chat_request_reads_the_callers_teams_collection(rag: RAG) -> None:
    """The RAG stage's retrieval: each key's "docs" is its team's; the master key names the
    team, and a key may not name another."""
    await two_teams_docs(rag)

    async def cited(principal: Principal, **extra: Any) -> list[str]:
        raw = {"collections": ["docs"], "top_k": 5, **extra}
        _, retrieval = await retrieve(rag, EVERY_WORD, raw, principal)
        return [c["source"] for c in retrieval.citations]

    assert await cited(RED) == ["plan"]
    assert await cited(BLUE) == ["menu"]
    assert await cited(MASTER, team_id="team_red") == ["plan"]
    assert await cited(MASTER, team_id="team_blue") == ["menu"]
    assert await cited(RED, team_id="team_red") == ["plan"]
    with pytest.raises(APIError) as missing:
        await cited(MASTER)  # the master key has no "docs" of its own
    assert (missing.value.status, missing.value.param) == (404, "rag.collections")
    with pytest.raises(APIError) as refused:
        await cited(BLUE, team_id="team_red")
    assert (refused.value.status, refused.value.param) == (403, "rag.team_id")


async def test_scheduled_syncs_sync_each_teams_collection(rag: RAG, tmp_path: Path) -> None:
    made = {}
    for team, text in (("team_red", PLAN), ("team_blue", MENU)):
        folder = tmp_path / team
        folder.mkdir()
        (folder / "only.txt").write_text(text)
        made[team] = rag.create(
            "docs", {"sources": [{"path": str(folder)}], "sync_every": 60}, team
        )
    loop = asyncio.ensure_future(run_schedule(rag, tick=0.05))
    try:
        for _ in range(200):
            if all(rag.collections.current(c).last_sync for c in made.values()):
                break
            await asyncio.sleep(0.05)
    finally:
        loop.cancel()
    for team, text in (("team_red", PLAN), ("team_blue", MENU)):
        synced = rag.collections.current(made[team])
        assert (synced.last_sync or {}).get("added") == 1
        hits = await rag.query(synced, QuerySpec(query=EVERY_WORD, mode="keyword", top_k=10))
        assert [h.hit.text for h in hits] == [text]


async def test_evaluation_answers_from_the_teams_collection(
    rag: RAG, fake_openai: FakeOpenAI
) -> None:
    """The evaluation asks as the master key: it must name the collection's team, not fall
    back to the master key's own collection of the same name."""
    red, _ = await two_teams_docs(rag)
    own = rag.create("docs", {}, None)
    await rag.upsert(own, [doc("memo", "The master's memo: Tuesday is a holiday.")])
    report = await evaluate(
        rag,
        red,
        {"q1": "When does the rocket fly?"},
        {},
        answers={"q1": ["Tuesday"]},
        model="chat",
        spec={"mode": "keyword"},
    )
    assert (report.collection, report.team_id, report.answered) == ("docs", "team_red", 1)
    system = fake_openai.requests_for("rag-namespaces-chat")[-1].body["messages"][0]["content"]
    assert PLAN in system
    assert "memo" not in system
    assert MENU not in system


def test_names_are_unique_in_each_namespace_in_the_database(database: Database) -> None:
    """The database itself refuses a second "docs" in one team, and in the master key's own
    namespace (NULL team ids never collide in a unique constraint: a partial index does it),
    on SQLite and PostgreSQL; other teams' "docs" are fine."""
    settings = CollectionSettings(embedding_model="embed").model_dump()

    def insert(team_id: str | None) -> None:
        with database.session() as session:
            session.add(
                CollectionRecord(id=new_id("col"), name="docs", team_id=team_id, settings=settings)
            )

    for team_id in ("team_red", "team_blue", None):
        insert(team_id)
    for team_id in ("team_red", None):
        with pytest.raises(IntegrityError):
            insert(team_id)


@pytest.mark.parametrize("team_id", ["team_red", None])
def test_two_creates_at_once_make_one_and_a_409(
    database: Database, monkeypatch: pytest.MonkeyPatch, team_id: str | None
) -> None:
    """A create that passed its check while another request made the name gets a 409, not a
    500 (the constraint decides), in a team's namespace and in the master key's."""
    settings = CollectionSettings(embedding_model="embed")
    made: list[Collection] = []

    def racing(prefix: str) -> str:
        if not made:  # the other request's create lands between the check and the insert
            monkeypatch.setattr(NEW_ID, new_id)
            made.append(Collections(database).create("docs", settings, team_id))
        return new_id(prefix)

    monkeypatch.setattr(NEW_ID, racing)
    collections = Collections(database)
    with pytest.raises(RagError) as taken:
        collections.create("docs", settings, team_id)
    assert (taken.value.status, taken.value.code) == (409, "collection_exists")
    assert len(made) == 1
    assert collections.get("docs", team_id).id == made[0].id
