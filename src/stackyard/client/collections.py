"""RAG collections through the gateway's API: create, push documents, sync, query.

from stackyard import Client
docs = Client().collections
docs.create("handbook")
docs.push("handbook", [{"id": "leave", "text": "Everyone gets 27 days of holiday."}])
for passage in docs.query("handbook", "how many holidays?", top_k=3):
    print(passage["source"], passage["score"], passage["text"])

Names are per team: a key's are its team's. With the master key, ``team_id=`` names the team
whose collection is meant (without it: the master key's own collections).
"""

from __future__ import annotations

import urllib.parse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stackyard.client.base import Client


Rows = list[dict[str, Any]]  # (``list`` is a method's name in the class)


class CollectionsClient:
    def __init__(self, client: Client) -> None:
        self.client = client

    def _path(self, name: str, *rest: str, team_id: str | None = None) -> str:
        parts = [urllib.parse.quote(p, safe="") for p in (name, *rest)]
        return "/api/collections/" + "/".join(parts) + _scope(team_id)

    def list(self, *, team_id: str | None = None) -> Rows:
        """The collections the key may see (the master key: all, or one team's)."""
        data: Rows = self.client.request("GET", "/api/collections" + _scope(team_id))["data"]
        return data

    def get(self, name: str, *, team_id: str | None = None) -> dict[str, Any]:
        found: dict[str, Any] = self.client.request("GET", self._path(name, team_id=team_id))
        return found

    def create(self, name: str, **settings: Any) -> dict[str, Any]:
        """``settings``: embedding_model, chunk_size, chunk_overlap, store, sources (a list of
        ``{"path": ...}``, master key only), description, team_id (master key only: the team
        whose collection it is)."""
        created: dict[str, Any] = self.client.request(
            "POST", "/api/collections", {"name": name, **settings}
        )
        return created

    def update(self, name: str, *, team_id: str | None = None, **settings: Any) -> dict[str, Any]:
        updated: dict[str, Any] = self.client.request(
            "PATCH", self._path(name, team_id=team_id), settings
        )
        return updated

    def delete(self, name: str, *, team_id: str | None = None) -> None:
        self.client.request("DELETE", self._path(name, team_id=team_id))

    def sync(
        self, name: str, *, team_id: str | None = None, timeout: float = 3600.0
    ) -> dict[str, Any]:
        """Read the collection's sources now (on the server); the report."""
        report: dict[str, Any] = self.client.request(
            "POST", self._path(name, "sync", team_id=team_id), timeout=timeout
        )
        return report

    def push(self, name: str, documents: Rows, *, team_id: str | None = None) -> dict[str, Any]:
        """Upsert documents: ``{"id", "text", "metadata"?}`` each, up to 1,000 a call."""
        report: dict[str, Any] = self.client.request(
            "POST",
            self._path(name, "documents", team_id=team_id),
            {"documents": documents},
            timeout=600.0,
        )
        return report

    def remove(self, name: str, document_id: str, *, team_id: str | None = None) -> None:
        self.client.request("DELETE", self._path(name, "documents", document_id, team_id=team_id))

    def query(self, name: str, query: str, *, team_id: str | None = None, **options: Any) -> Rows:
        """``options``: top_k, mode (hybrid, dense, keyword), filter, rrf_k, dense_weight,
        keyword_weight, candidates."""
        found: Rows = self.client.request(
            "POST", self._path(name, "query", team_id=team_id), {"query": query, **options}
        )["data"]
        return found


def _scope(team_id: str | None) -> str:
    """The query string that names a team (the master key's way to reach its collections)."""
    return "?" + urllib.parse.urlencode({"team_id": team_id}) if team_id else ""
