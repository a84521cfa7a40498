"""The console's RAG pages, read from the collections API as the logged-in key:

GET  /ui/rag                the collections the key may see, their size and sync state
POST /ui/rag                create a collection
GET  /ui/rag/{name}         one collection: settings, sources, the last sync's report, and a
                            query box (?q=) showing the passages retrieved with their scores
POST /ui/rag/{name}         sync it now, add a document, or delete it

Names are per team: a page's ``?team_id=`` is passed on to the API, which is how the master key
reaches a team's collection (a key's own team is its default; the master key's, its own
collections). Links from the list carry it.
"""

from __future__ import annotations

import urllib.parse
from typing import TYPE_CHECKING, Any

from stackyard.server.http import Request
from stackyard.server.routing import Reply, Routes
from stackyard.ui import forms

if TYPE_CHECKING:
    from stackyard.ui.pages import Console, Viewer

PREFIX = "/ui/rag/"
API = "/api/collections"
MODES = ("hybrid", "dense", "keyword")


class CollectionPages:
    def __init__(self, console: Console) -> None:
        self.console = console

    def register(self, routes: Routes) -> None:
        page = self.console.page
        routes.add("GET", ["/ui/rag"], page(self.collections))
        routes.add("POST", ["/ui/rag"], page(self.create))
        routes.add_prefix("GET", PREFIX, page(self.collection))
        routes.add_prefix("POST", PREFIX, page(self.act))

    async def collections(
        self, request: Request, key: str, viewer: Viewer, error: str | None = None
    ) -> Reply:
        status, found = await self.console.call(key, "GET", API)
        if status == 404:  # no rag extra installed
            error = "RAG is not available here: install the 'rag' extra."
        elif status != 200:
            error = forms.message(found)
        return self.console.render(
            "collections.html",
            400 if error and status == 200 else 200,
            viewer=viewer,
            active="rag",
            collections=forms.rows(found),
            error=error,
        )

    async def create(self, request: Request, key: str, viewer: Viewer) -> Reply:
        form = forms.form(await request.body())
        name = form.get("name", "").strip()
        body: dict[str, Any] = {"name": name, "description": form.get("description", "")}
        if form.get("embedding_model", "").strip():
            body["embedding_model"] = form["embedding_model"].strip()
        status, answer = await self.console.call(key, "POST", API, body=body)
        if status != 200:
            return await self.collections(request, key, viewer, error=forms.message(answer))
        return forms.redirect(PREFIX + forms.quoted(name))

    async def collection(
        self,
        request: Request,
        key: str,
        viewer: Viewer,
        error: str | None = None,
        notice: str | None = None,
    ) -> Reply:
        name, team = _name(request), _team(request)
        scope = {"team_id": team}
        status, found = await self.console.call(
            key, "GET", f"{API}/{forms.quoted(name)}", query=scope
        )
        if status != 200:
            what = f"No collection '{name}' that this key may see."
            return self.console.render("refused.html", 404, viewer=viewer, active="rag", what=what)
        params = request.query
        query = {
            "q": params.get("q", "").strip(),
            "mode": params.get("mode") if params.get("mode") in MODES else "hybrid",
            "top_k": forms.number(params.get("top_k")) or 5,
        }
        results: list[dict[str, Any]] = []
        if query["q"]:
            body = {"query": query["q"], "mode": query["mode"], "top_k": query["top_k"]}
            status, answer = await self.console.call(
                key, "POST", f"{API}/{forms.quoted(name)}/query", query=scope, body=body
            )
            if status == 200:
                results = forms.rows(answer)
            else:
                error = forms.message(answer)
        return self.console.render(
            "collection.html",
            400 if error else 200,
            viewer=viewer,
            active="rag",
            collection=found,
            here=page_of(name, team),
            team=team,
            query=query,
            modes=MODES,
            results=results,
            error=error,
            notice=notice,
        )

    async def act(self, request: Request, key: str, viewer: Viewer) -> Reply:
        name, team = _name(request), _team(request)
        base = f"{API}/{forms.quoted(name)}"
        scope = {"team_id": team}
        form = forms.form(await request.body())
        action = form.get("action")
        if action == "sync":
            status, answer = await self.console.call(key, "POST", f"{base}/sync", query=scope)
            notice = _synced(answer) if status == 200 else None
        elif action == "document":
            document = {"id": form.get("id", "").strip(), "text": form.get("text", "")}
            status, answer = await self.console.call(
                key, "POST", f"{base}/documents", query=scope, body={"documents": [document]}
            )
            notice = f"Document '{document['id']}' written." if status == 200 else None
        elif action == "delete":
            status, answer = await self.console.call(key, "DELETE", base, query=scope)
            if status == 200:
                return forms.redirect("/ui/rag")
            notice = None
        else:
            status, answer, notice = 400, {"error": {"message": f"unknown action '{action}'"}}, None
        error = forms.message(answer) if status != 200 else None
        return await self.collection(request, key, viewer, error=error, notice=notice)


def _name(request: Request) -> str:
    return urllib.parse.unquote(request.path.removeprefix(PREFIX).strip("/"))


def _team(request: Request) -> str | None:
    """The team whose collection the page shows (None: the caller's own namespace)."""
    return request.query.get("team_id") or None


def page_of(name: str, team: str | None) -> str:
    """A collection's page: its name, and its team where one is named."""
    page = PREFIX + forms.quoted(name)
    return page + "?" + urllib.parse.urlencode({"team_id": team}) if team else page


def _synced(report: Any) -> str:
    counts = ("added", "changed", "deleted", "unchanged", "chunks_embedded")
    shown = ", ".join(f"{report.get(c, 0)} {c.replace('_', ' ')}" for c in counts)
    return f"Synced: {shown}."
