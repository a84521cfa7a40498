"""The admin API under ``/admin`` (master key only): organisations, teams, users, keys and
spend.

POST /admin/organizations  {"name", "models"?, "rpm"?, "tpm"?, "budget_usd"?, "budget_period"?}
GET  /admin/organizations
POST /admin/teams          {"name", "organization"?, "models"?, "rpm"?, ...}
GET  /admin/teams
POST /admin/keys           {"team", "name"?, "models"?, "rpm"?, "tpm"?, "budget_usd"?,
                            "budget_period"?, "expires_in_days"?}  -> the key, shown once
GET  /admin/keys
POST /admin/keys/revoke    {"id"}
POST /admin/keys/update    {"id", "models"?, "rpm"?, "tpm"?, "budget_usd"?, "budget_period"?,
                            "budget_soft"?}: only the fields sent change; null clears a limit
POST /admin/teams/update   {"team", ...the same fields}
GET  /admin/spend?by=organization|team|user|key|model&since=7d
GET  /admin/spend/daily?by=team&days=30
GET  /admin/guardrails/audit?team=search&since=1d&limit=100
"""

from __future__ import annotations

import asyncio
import datetime as dt
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any

from stackyard.auth.admission import Governance
from stackyard.auth.notify import publish_change
from stackyard.errors import APIError, invalid_request
from stackyard.server.admin_openapi import DOCUMENT
from stackyard.server.http import Request, Response
from stackyard.server.routing import Reply, Routes
from stackyard.store import admin
from stackyard.store.db import Database
from stackyard.store.tables.base import aware

#: The most days ``/admin/spend/daily`` goes back (ten years).
MAX_DAYS = 3660


def parse_since(text: str) -> dt.datetime:
    """``7d``, ``24h``, ``30m`` or an ISO date."""
    now = dt.datetime.now(dt.UTC)
    units = {"d": "days", "h": "hours", "m": "minutes"}
    if text and text[-1] in units and text[:-1].isdigit():
        try:  # a span longer than there is time (99999999999d) is every row
            return now - dt.timedelta(**{units[text[-1]]: int(text[:-1])})
        except OverflowError:
            return dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise invalid_request(f"since: expected 7d, 24h, 30m or a date, not '{text}'") from None
    return aware(moment)


_KINDS = {str: "a string", int: "an integer", float: "a number", bool: "a boolean"}


def _optional(body: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    value = body.get(name)
    if value is not None and not isinstance(value, kind):
        kinds = kind if isinstance(kind, tuple) else (kind,)
        wanted = (
            "a number" if float in kinds else " or ".join(_KINDS.get(k, k.__name__) for k in kinds)
        )
        raise invalid_request(f"'{name}' must be {wanted}", param=name)
    return value


def _controls(body: dict[str, Any]) -> dict[str, Any]:
    """The models, limits and budget any level (organisation to key) may be given."""
    return {
        "models": _optional(body, "models", list),
        "rpm": _optional(body, "rpm", int),
        "tpm": _optional(body, "tpm", int),
        "budget_usd": _optional(body, "budget_usd", (int, float)),
        "budget_period": _optional(body, "budget_period", str) or "month",
        "budget_soft": bool(_optional(body, "budget_soft", bool)),
    }


def _changes(body: dict[str, Any]) -> dict[str, Any]:
    """The controls an update sends, checked (only those present; null clears one)."""
    kinds: dict[str, Any] = {
        "models": list,
        "rpm": int,
        "tpm": int,
        "budget_usd": (int, float),
        "budget_period": str,
        "budget_soft": bool,
    }
    for name in body:
        if name not in kinds:
            raise invalid_request(
                f"'{name}' cannot be changed; send any of {', '.join(kinds)}", param=name
            )
    changes = {name: _optional(body, name, kinds[name]) for name in body}
    for name in ("rpm", "tpm", "budget_usd"):
        value = changes.get(name)
        if isinstance(value, bool) or (
            value is not None and value < (0 if name == "budget_usd" else 1)
        ):
            raise invalid_request(f"'{name}' must be a positive number or null", param=name)
    models = changes.get("models")
    if models is not None and not all(isinstance(m, str) for m in models):
        raise invalid_request("'models' must be a list of model names or null", param="models")
    if not changes:
        raise invalid_request("nothing to change: send a limit, a budget or models")
    return changes


class AdminAPI:
    def __init__(
        self, db: Database, governance: Governance, *, redis_url: str | None = None
    ) -> None:
        self.db = db
        self.governance = governance
        self.redis_url = redis_url

    def register(self, routes: Routes) -> None:
        routes.add("POST", ["/admin/organizations"], self._guard(self.create_organization))
        routes.add("GET", ["/admin/organizations"], self._guard(self.organizations))
        routes.add("POST", ["/admin/teams"], self._guard(self.create_team))
        routes.add("GET", ["/admin/teams"], self._guard(self.teams))
        routes.add("POST", ["/admin/users"], self._guard(self.create_user))
        routes.add("GET", ["/admin/users"], self._guard(self.users))
        routes.add("POST", ["/admin/keys"], self._guard(self.create_key))
        routes.add("GET", ["/admin/keys"], self._guard(self.keys))
        routes.add("POST", ["/admin/keys/revoke"], self._guard(self.revoke))
        routes.add("POST", ["/admin/keys/update"], self._guard(self.update_key))
        routes.add("POST", ["/admin/teams/update"], self._guard(self.update_team))
        routes.add("GET", ["/admin/spend"], self._guard(self.spend))
        routes.add("GET", ["/admin/spend/daily"], self._guard(self.daily_spend))
        routes.add("GET", ["/admin/guardrails/audit"], self._guard(self.guardrail_audit))
        routes.add("GET", ["/admin/openapi.json"], self._guard(self._openapi))

    async def _openapi(self, request: Request) -> Any:
        return DOCUMENT

    def _guard(
        self, handler: Callable[[Request], Awaitable[Any]]
    ) -> Callable[[Request], Awaitable[Reply]]:
        async def guarded(request: Request) -> Reply:
            self.governance.require_master(request)
            try:
                result = await handler(request)
            except admin.AdminError as exc:
                raise APIError(400, str(exc)) from None
            if request.method == "POST":  # a change: every instance reloads now, this one first
                if self.governance.snapshot is not None:
                    await self.governance.snapshot.refresh()
                await asyncio.to_thread(publish_change, self.redis_url)
            return Response.json(result)

        return guarded

    async def create_organization(self, request: Request) -> Any:
        body = await request.json_object()
        name = body.get("name")
        if not isinstance(name, str) or not name:
            raise invalid_request("'name' is required", param="name")
        return await asyncio.to_thread(admin.create_organization, self.db, name, **_controls(body))

    async def organizations(self, request: Request) -> Any:
        return {"data": await asyncio.to_thread(admin.list_organizations, self.db)}

    async def create_team(self, request: Request) -> Any:
        body = await request.json_object()
        name = body.get("name")
        if not isinstance(name, str) or not name:
            raise invalid_request("'name' is required", param="name")
        return await asyncio.to_thread(
            admin.create_team,
            self.db,
            name,
            organization=_optional(body, "organization", str),
            **_controls(body),
        )

    async def teams(self, request: Request) -> Any:
        return {"data": await asyncio.to_thread(admin.list_teams, self.db)}

    async def create_user(self, request: Request) -> Any:
        body = await request.json_object()
        email = body.get("email")
        if not isinstance(email, str) or not email:
            raise invalid_request("'email' is required", param="email")
        return await asyncio.to_thread(
            admin.create_user,
            self.db,
            email,
            team=_optional(body, "team", str),
            **_controls(body),
        )

    async def users(self, request: Request) -> Any:
        return {"data": await asyncio.to_thread(admin.list_users, self.db)}

    async def create_key(self, request: Request) -> Any:
        body = await request.json_object()
        team = body.get("team")
        if not isinstance(team, str) or not team:
            raise invalid_request("'team' (a team name or id) is required", param="team")
        days = _optional(body, "expires_in_days", (int, float))
        if days is not None and (isinstance(days, bool) or not 0 < days <= 36_500):
            raise invalid_request(
                "'expires_in_days' must be a number of days above 0 (at most 36500)",
                param="expires_in_days",
            )
        created = await asyncio.to_thread(
            admin.create_key,
            self.db,
            team,
            user=_optional(body, "user", str),
            name=_optional(body, "name", str) or "",
            **_controls(body),
            expires_in=dt.timedelta(days=days) if days else None,
        )
        return {"key": created.key, **created.record}

    async def keys(self, request: Request) -> Any:
        return {"data": await asyncio.to_thread(admin.list_keys, self.db)}

    async def revoke(self, request: Request) -> Any:
        body = await request.json_object()
        key_id = body.get("id")
        if not isinstance(key_id, str):
            raise invalid_request("'id' is required", param="id")
        return await asyncio.to_thread(admin.revoke_key, self.db, key_id)

    async def update_key(self, request: Request) -> Any:
        body = await request.json_object()
        key_id = body.pop("id", None)
        if not isinstance(key_id, str):
            raise invalid_request("'id' is required", param="id")
        return await asyncio.to_thread(admin.update_key, self.db, key_id, _changes(body))

    async def update_team(self, request: Request) -> Any:
        body = await request.json_object()
        team = body.pop("team", None)
        if not isinstance(team, str) or not team:
            raise invalid_request("'team' (a team name or id) is required", param="team")
        return await asyncio.to_thread(admin.update_team, self.db, team, _changes(body))

    async def spend(self, request: Request) -> Any:
        query = urllib.parse.parse_qs(request.scope.get("query_string", b"").decode())
        by = query.get("by", ["team"])[0]
        since = parse_since(query.get("since", ["30d"])[0])
        return {"data": await asyncio.to_thread(admin.spend, self.db, by=by, since=since)}

    async def daily_spend(self, request: Request) -> Any:
        query = urllib.parse.parse_qs(request.scope.get("query_string", b"").decode())
        by = query.get("by", ["team"])[0]
        days = query.get("days", ["30"])[0]
        if not days.isdigit() or not 1 <= int(days) <= MAX_DAYS:
            raise invalid_request(
                f"days: expected an integer from 1 to {MAX_DAYS}, not '{days}'", param="days"
            )
        since = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=int(days) - 1)
        rows = await asyncio.to_thread(admin.daily_spend, self.db, by=by, since=since)
        return {"data": rows}

    async def guardrail_audit(self, request: Request) -> Any:
        query = urllib.parse.parse_qs(request.scope.get("query_string", b"").decode())
        since = parse_since(query.get("since", ["1d"])[0])
        limit = query.get("limit", ["100"])[0]
        if not limit.isdigit() or not 1 <= int(limit) <= 10_000:
            raise invalid_request(
                f"limit: expected an integer from 1 to 10000, not '{limit}'", param="limit"
            )
        rows = await asyncio.to_thread(
            admin.guardrail_decisions,
            self.db,
            since=since,
            team=query.get("team", [None])[0],
            limit=int(limit),
        )
        return {"data": rows}
