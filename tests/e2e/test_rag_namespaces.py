"""RAG collection names are per team, through real gateways (embedded and pgvector): two teams
may each have a collection of one name, a team learns nothing of another team's names, and the
master key names the team whose collection it means."""

from __future__ import annotations

import time
from typing import Any

import httpx
import openai
import pytest

from stackyard.client import Client
from tests.conftest import team_key
from tests.e2e.rag_served import HEADERS, MASTER, STORES, Served, api, sdk, serve_rag
from tests.fakes.openai_upstream import FakeOpenAI

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module", params=STORES)
def gateway(
    request: pytest.FixtureRequest, fake_openai: FakeOpenAI, gateway_factory: Any
) -> Served:
    return serve_rag(request, fake_openai, gateway_factory)


PLAN = "Red team launch plan: the rocket flies on Tuesday."
MENU = "Blue team lunch menu: soup on Tuesday."
EVERY_WORD = "red blue team launch plan rocket flies lunch menu soup tuesday"


def new_team(gateway: Served, name: str) -> tuple[str, str]:
    """A new team's id and a key of it that the gateway already knows."""
    key = team_key(gateway.process, f"{name}-{gateway.kind}", MASTER)
    deadline = time.monotonic() + 60  # the instance learns of the key at its next poll
    while True:
        seen = httpx.get(
            f"{gateway.url}/api/collections", headers={"authorization": f"Bearer {key}"}
        )
        if seen.status_code != 401:
            break
        assert time.monotonic() < deadline
        time.sleep(0.05)
    teams = httpx.get(f"{gateway.url}/admin/teams", headers=HEADERS).json()["data"]
    (team_id,) = [t["id"] for t in teams if t["name"] == f"{name}-{gateway.kind}"]
    return team_id, key


def cited(gateway: Served, key: str, rag: dict[str, Any]) -> list[str]:
    with sdk(gateway, key) as client:
        reply = client.chat.completions.create(
            model="chat",
            messages=[{"role": "user", "content": EVERY_WORD}],
            extra_body={"rag": {"top_k": 5, **rag}},
        )
    return [c["source"] for c in (reply.model_extra or {})["citations"]]


def refusal(gateway: Served, key: str, method: str, path: str, **body: Any) -> tuple[int, Any]:
    response = httpx.request(
        method,
        f"{gateway.url}/api/collections{path}",
        json=body or None,
        headers={"authorization": f"Bearer {key}"},
    )
    assert response.status_code != 200, response.text
    return response.status_code, response.json()["error"]


def test_two_teams_may_each_have_a_collection_of_one_name(gateway: Served) -> None:
    """The attack was a 409 telling one team the names of another's collections. Now team
    red and team blue each create "docs"; each sees, searches and chats with its own only, and
    deleting one leaves the other."""
    red_id, red = new_team(gateway, "red")
    blue_id, blue = new_team(gateway, "blue")
    made_red = api(gateway, "POST", "", key=red, name="docs")
    made_blue = api(gateway, "POST", "", key=blue, name="docs")
    assert (made_red["team_id"], made_blue["team_id"]) == (red_id, blue_id)
    assert made_red["id"] != made_blue["id"]
    api(gateway, "POST", "/docs/documents", key=red, documents=[{"id": "plan", "text": PLAN}])
    api(gateway, "POST", "/docs/documents", key=blue, documents=[{"id": "menu", "text": MENU}])

    for key, team_id, source in ((red, red_id, "plan"), (blue, blue_id, "menu")):
        listed = api(gateway, "GET", "", key=key)["data"]
        assert [(c["name"], c["team_id"], c["documents"]) for c in listed] == [("docs", team_id, 1)]
        for mode in ("keyword", "dense", "hybrid"):
            found = api(gateway, "POST", "/docs/query", key=key, query=EVERY_WORD, mode=mode)
            assert [h["source"] for h in found["data"]] == [source]
        assert cited(gateway, key, {"collections": ["docs"]}) == [source]
        report = api(gateway, "POST", "/docs/sync", key=key)  # no sources: nothing removed
        assert report["deleted"] == 0
        assert api(gateway, "GET", "/docs", key=key)["documents"] == 1

    api(gateway, "DELETE", "/docs", key=red)
    assert refusal(gateway, red, "GET", "/docs")[0] == 404
    assert api(gateway, "GET", "/docs", key=blue)["id"] == made_blue["id"]
    assert cited(gateway, blue, {"collections": ["docs"]}) == ["menu"]
    api(gateway, "DELETE", "/docs", key=blue)


def test_a_team_learns_nothing_of_another_teams_names(gateway: Served) -> None:
    red_id, red = new_team(gateway, "red-secrets")
    _, blue = new_team(gateway, "blue-secrets")
    api(gateway, "POST", "", key=red, name="merger-plans")
    # Every answer about red's name is the answer about a name nobody has.
    cases: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", "", {}),
        ("PATCH", "", {"description": "x"}),
        ("POST", "/query", {"query": "merger"}),
        ("POST", "/sync", {}),
        ("POST", "/documents", {"documents": [{"id": "a", "text": "b"}]}),
        ("DELETE", "", {}),
    ]
    for method, path, body in cases:
        theirs = refusal(gateway, blue, method, f"/merger-plans{path}", **body)
        nobodys = refusal(gateway, blue, method, f"/nobodys-plans{path}", **body)
        assert theirs[0] == nobodys[0] == 404
        assert theirs[1]["message"] == "no collection named 'merger-plans'"
        assert {**theirs[1], "message": ""} == {**nobodys[1], "message": ""}
    with sdk(gateway, blue) as client, pytest.raises(openai.NotFoundError) as chat:
        client.chat.completions.create(
            model="chat",
            messages=[{"role": "user", "content": "plans?"}],
            extra_body={"rag": {"collections": ["merger-plans"]}},
        )
    assert chat.value.message.endswith("no collection named 'merger-plans'")
    # Naming red's team is refused whether or not red has the name.
    for name in ("merger-plans", "nobodys-plans"):
        status, error = refusal(gateway, blue, "GET", f"/{name}?team_id={red_id}")
        assert (status, error["code"]) == (403, "permission_denied")
    # And the name is blue's to take: no 409.
    mine = api(gateway, "POST", "", key=blue, name="merger-plans")
    assert mine["team_id"] != red_id
    assert refusal(gateway, blue, "POST", "", name="merger-plans")[0] == 409  # its own, now


def test_the_master_key_names_the_team_whose_collection_it_means(gateway: Served) -> None:
    red_id, red = new_team(gateway, "red-master")
    blue_id, blue = new_team(gateway, "blue-master")
    name = f"shared-{gateway.kind}"
    for key, doc_id, text in ((red, "plan", PLAN), (blue, "menu", MENU)):
        api(gateway, "POST", "", key=key, name=name)
        api(
            gateway, "POST", f"/{name}/documents", key=key, documents=[{"id": doc_id, "text": text}]
        )

    # Without team_id, the master key means its own collections: it has none of this name,
    # and it is told where they are rather than given one of the teams'.
    status, error = refusal(gateway, MASTER, "GET", f"/{name}")
    assert status == 404
    assert error["message"] == (
        f"no collection named '{name}' among the master key's own "
        f"(elsewhere: {', '.join(f'team {t}' for t in sorted([red_id, blue_id]))})"
    )
    with sdk(gateway) as client, pytest.raises(openai.NotFoundError):
        client.chat.completions.create(
            model="chat",
            messages=[{"role": "user", "content": "plans?"}],
            extra_body={"rag": {"collections": [name]}},
        )
    everything = api(gateway, "GET", "")["data"]
    assert {c["team_id"] for c in everything if c["name"] == name} == {red_id, blue_id}
    for team_id, source in ((red_id, "plan"), (blue_id, "menu")):
        scoped = f"?team_id={team_id}"
        assert [c["team_id"] for c in api(gateway, "GET", scoped)["data"]] == [team_id]
        assert api(gateway, "GET", f"/{name}{scoped}")["team_id"] == team_id
        found = api(gateway, "POST", f"/{name}/query{scoped}", query=EVERY_WORD)
        assert [h["source"] for h in found["data"]] == [source]
        assert cited(gateway, MASTER, {"collections": [name], "team_id": team_id}) == [source]
        assert api(gateway, "POST", f"/{name}/sync{scoped}")["deleted"] == 0
        changed = api(gateway, "PATCH", f"/{name}{scoped}", description=f"for {team_id}")
        assert changed["description"] == f"for {team_id}"
    docs = Client(gateway.url, MASTER).collections
    assert docs.get(name, team_id=blue_id)["description"] == f"for {blue_id}"
    assert [h["source"] for h in docs.query(name, EVERY_WORD, team_id=red_id)] == ["plan"]

    # The master key's own collection of the name is a third, its default.
    own = api(gateway, "POST", "", name=name)
    assert own["team_id"] is None
    assert api(gateway, "GET", f"/{name}")["id"] == own["id"]
    made = api(gateway, "POST", "", name=f"made-for-red-{gateway.kind}", team_id=red_id)
    assert made["team_id"] == red_id
    assert made["id"] in [c["id"] for c in api(gateway, "GET", "", key=red)["data"]]
    status, error = refusal(
        gateway, MASTER, "POST", f"?team_id={blue_id}", name="x", team_id=red_id
    )
    assert (status, error["param"]) == (400, "team_id")

    api(gateway, "DELETE", f"/{name}?team_id={red_id}")
    assert refusal(gateway, red, "GET", f"/{name}")[0] == 404
    assert api(gateway, "GET", f"/{name}", key=blue)["documents"] == 1
    assert api(gateway, "GET", f"/{name}")["id"] == own["id"]
    api(gateway, "DELETE", f"/{name}")
    api(gateway, "DELETE", f"/{name}?team_id={blue_id}")
