"""The RAG pages: create a collection, add documents, search it and see the passages with
their scores, sync it and see the report, one team's collection hidden from another, and
delete it."""

from __future__ import annotations

import re

import httpx

from tests.conftest import GatewayProcess, team_key
from tests.ui.conftest import MASTER, browser


def test_create_fill_search_sync_and_delete_a_collection(gateway: GatewayProcess) -> None:
    owner = team_key(gateway, "librarians", MASTER)
    outsider = team_key(gateway, "readers", MASTER)
    with browser(gateway, owner) as client:
        assert "No collections yet." in client.get("/ui/rag").text
        made = client.post("/ui/rag", data={"name": "handbook", "description": "HR rules"})
        assert made.status_code == 303
        assert made.headers["location"] == "/ui/rag/handbook"
        for doc_id, text in (
            ("holidays", "Every employee gets 27 days of paid holiday a year."),
            ("expenses", "Taxi receipts are refunded within 14 days of the trip."),
        ):
            added = client.post(
                "/ui/rag/handbook", data={"action": "document", "id": doc_id, "text": text}
            )
            assert added.status_code == 200
            assert f"Document &#39;{doc_id}&#39; written." in added.text
        listing = client.get("/ui/rag").text
        row = listing.split('<a href="/ui/rag/handbook">handbook</a>')[1].split("</tr>")[0]
        assert '<td class="num">2</td>' in row  # two documents
        assert "ready" in row
        assert "<td>never</td>" in row  # documents pushed through the API, no sync yet

        found = client.get("/ui/rag/handbook", params={"q": "taxi receipts", "mode": "keyword"})
        results = found.text.split('<ol class="results" id="results">')[1].split("</ol>")[0]
        assert results.count("<li>") == 1  # only one passage has those words
        assert "Taxi receipts are refunded" in results
        assert "keyword rank 1" in results
        assert re.search(r"<strong>score \d+\.\d{4}</strong>", results)  # BM25's score
        hybrid = client.get("/ui/rag/handbook", params={"q": "holiday", "top_k": "2"}).text
        assert hybrid.split('id="results">')[1].split("</ol>")[0].count("<li>") == 2

        synced = client.post("/ui/rag/handbook", data={"action": "sync"})
        assert synced.status_code == 200
        assert "Synced:" in synced.text
        assert '<table id="last-sync">' in synced.text
        assert re.search(r"<dt>Last sync</dt><dd>20\d\d-\d\d-\d\d ", synced.text)

        bad = client.post("/ui/rag", data={"name": "handbook"})
        assert bad.status_code == 400
        assert 'class="error"' in bad.text
        empty_query = client.get("/ui/rag/handbook", params={"q": "x", "top_k": "999"})
        assert empty_query.status_code == 400  # the API's own message, on the page
        assert "top_k" in empty_query.text
    with browser(gateway, outsider) as other:
        assert "handbook" not in other.get("/ui/rag").text
        assert other.get("/ui/rag/handbook").status_code == 404
        assert other.post("/ui/rag/handbook", data={"action": "delete"}).status_code == 404
    with browser(gateway, owner) as client:
        gone = client.post("/ui/rag/handbook", data={"action": "delete"})
        assert gone.headers["location"] == "/ui/rag"
        assert client.get("/ui/rag/handbook").status_code == 404


def test_the_master_key_reaches_each_teams_collection_of_one_name(
    gateway: GatewayProcess,
) -> None:
    """Two teams each have "minutes": each team's pages show its own; the master key's list
    shows both, each linked with its team, and every page, search, sync and form acts on that
    team's collection (the master key has no "minutes" of its own)."""
    texts = {"ui-red": "Red: the rocket flies on Tuesday.", "ui-blue": "Blue: soup on Tuesday."}
    for team, text in texts.items():
        with browser(gateway, team_key(gateway, team, MASTER)) as client:
            assert client.post("/ui/rag", data={"name": "minutes"}).status_code == 303
            added = client.post(
                "/ui/rag/minutes", data={"action": "document", "id": team, "text": text}
            )
            assert added.status_code == 200
            own = client.get("/ui/rag/minutes", params={"q": "tuesday", "mode": "keyword"}).text
            assert text in own
            assert all(other not in own for other in texts.values() if other != text)
    teams = httpx.get(
        f"{gateway.url}/admin/teams", headers={"authorization": f"Bearer {MASTER}"}
    ).json()["data"]
    ids = {t["name"]: t["id"] for t in teams if t["name"] in texts}
    with browser(gateway, MASTER) as admin:
        listing = admin.get("/ui/rag").text
        for team, team_id in ids.items():
            link = f"/ui/rag/minutes?team_id={team_id}"
            assert f'href="{link}"' in listing
            page = admin.get(link)
            assert page.status_code == 200
            assert f"A collection of team {team_id}" in page.text
            assert f'action="{link}"' in page.text  # its forms post back to this team's
            assert f'<input type="hidden" name="team_id" value="{team_id}">' in page.text
            found = admin.get(
                "/ui/rag/minutes", params={"q": "tuesday", "mode": "keyword", "team_id": team_id}
            ).text
            results = found.split('id="results">')[1].split("</ol>")[0]
            assert texts[team] in results
            assert results.count("<li>") == 1
            synced = admin.post(link, data={"action": "sync"})
            assert "Synced:" in synced.text
        assert admin.get("/ui/rag/minutes").status_code == 404  # none of its own
        red = f"/ui/rag/minutes?team_id={ids['ui-red']}"
        assert admin.post(red, data={"action": "delete"}).headers["location"] == "/ui/rag"
        assert admin.get(red).status_code == 404
        blue = admin.get(f"/ui/rag/minutes?team_id={ids['ui-blue']}")
        assert blue.status_code == 200
        assert "<dt>Documents</dt><dd>1</dd>" in blue.text
