"""The prompt registry's API, under ``/api/prompts`` (any valid key; changes are audited with
the caller's key id, or ``master``):

GET  /api/prompts                          every prompt, its latest version and labels
POST /api/prompts                          push a version: {"name", "template" | "messages",
                                           "variables"?, "config"?, "engine"?, "message"?,
                                           "labels"?}; identical content makes no new version
GET  /api/prompts/{name}                   versions and labels
GET  /api/prompts/{name}/versions/{n}      one version ("latest" for the newest)
GET  /api/prompts/{name}/labels/{label}    the version a label points at
GET  /api/prompts/{name}/diff?from=&to=    a unified diff and the config changes
GET  /api/prompts/{name}/audit             every push and label move: who, when, from, to
POST /api/prompts/{name}/labels            {"label", "version"} or {"label", "targets":
                                           [{"version", "weight"}], "sticky"?: user|session}
POST /api/prompts/{name}/rollback          {"label"}: back to where it pointed before
POST /api/prompts/{name}/render            {"label"? | "version"?, "variables"}: the messages
"""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import ValidationError

from stackyard.auth.admission import Governance
from stackyard.auth.notify import publish_change
from stackyard.errors import APIError, invalid_request
from stackyard.prompts import registry
from stackyard.prompts.model import PushRequest, describe_error
from stackyard.prompts.snapshot import PromptSnapshot
from stackyard.server.http import Request, Response
from stackyard.server.routing import Reply, Routes
from stackyard.store.db import Database

PREFIX = "/api/prompts/"


def _int(value: str | None, name: str) -> int:
    try:
        return int(value or "")
    except ValueError:
        raise invalid_request(f"'{name}' must be a version number", param=name) from None


class PromptsAPI:
    def __init__(
        self,
        db: Database,
        governance: Governance,
        prompts: PromptSnapshot,
        *,
        redis_url: str | None = None,
    ) -> None:
        self.db = db
        self.governance = governance
        self.prompts = prompts
        self.redis_url = redis_url

    def register(self, routes: Routes) -> None:
        routes.add("GET", ["/api/prompts"], self._call(self.list_all))
        routes.add("POST", ["/api/prompts"], self._call(self.push, change=True))
        routes.add_prefix("GET", PREFIX, self._call(self.read))
        changes = self._call(self.write, change=True)
        renders = self._call(self.render)

        async def post(request: Request) -> Reply:
            # Rendering reads the snapshot; everything else under the prefix changes it.
            is_render = request.scope["path"].rstrip("/").endswith("/render")
            return await (renders if is_render else changes)(request)

        routes.add_prefix("POST", PREFIX, post)

    def _actor(self, request: Request) -> registry.Actor:
        principal = self.governance.authenticate(request)
        if principal.master:
            return registry.Actor("master", admin=True)
        if principal.key_id is None:  # an open gateway: no keys at all
            return registry.Actor("open", admin=True)
        return registry.Actor(principal.key_id, team_id=principal.team_id)

    def _call(
        self, handler: Callable[[Request, registry.Actor], Awaitable[Any]], *, change: bool = False
    ) -> Callable[[Request], Awaitable[Reply]]:
        async def call(request: Request) -> Reply:
            actor = self._actor(request)
            try:
                result = await handler(request, actor)
            except registry.RegistryError as exc:
                code = {404: "prompt_not_found", 403: "permission_denied"}.get(
                    exc.status, "invalid_prompt_request"
                )
                raise APIError(exc.status, str(exc), param=exc.param, code=code) from None
            if change:  # every instance reloads now; this one before it answers
                await asyncio.to_thread(publish_change, self.redis_url)
                await asyncio.to_thread(self.prompts.load)
            return Response.json(result)

        return call

    async def list_all(self, request: Request, actor: registry.Actor) -> Any:
        return {"object": "list", "data": await asyncio.to_thread(registry.list_prompts, self.db)}

    async def push(self, request: Request, actor: registry.Actor) -> Any:
        body = await request.json_object()
        try:
            push = PushRequest.model_validate(body)
        except ValidationError as exc:
            raise invalid_request(describe_error(exc), code="invalid_prompt") from None
        version, created = await asyncio.to_thread(registry.push, self.db, push, actor)
        return {**version, "created": created}

    def _path(self, request: Request) -> tuple[str, list[str], dict[str, str]]:
        rest = request.scope["path"][len(PREFIX) :].strip("/")
        name, *tail = [urllib.parse.unquote(part) for part in rest.split("/")]
        raw = urllib.parse.parse_qs(request.scope.get("query_string", b"").decode("latin-1"))
        return name, tail, {k: v[-1] for k, v in raw.items()}

    async def read(self, request: Request, actor: registry.Actor) -> Any:
        name, tail, params = self._path(request)
        db = self.db
        if not tail:
            return await asyncio.to_thread(registry.get_prompt, db, name)
        if tail[0] == "versions" and len(tail) == 2:
            number = None if tail[1] == "latest" else _int(tail[1], "version")
            return await asyncio.to_thread(registry.get_version, db, name, number)
        if tail[0] == "labels" and len(tail) == 2:
            return await asyncio.to_thread(registry.get_version, db, name, None, tail[1])
        if tail == ["diff"]:
            old, new = _int(params.get("from"), "from"), _int(params.get("to"), "to")
            return await asyncio.to_thread(registry.diff, db, name, old, new)
        if tail == ["audit"]:
            return {"object": "list", "data": await asyncio.to_thread(registry.audit_log, db, name)}
        raise APIError(404, f"No route {request.scope['path']}", code="not_found")

    async def write(self, request: Request, actor: registry.Actor) -> Any:
        name, tail, _ = self._path(request)
        body = await request.json_object()
        label = body.get("label")
        if not isinstance(label, str):
            raise invalid_request("'label' is required", param="label")
        if tail == ["labels"]:
            version, targets = body.get("version"), body.get("targets")
            if targets is not None and not (
                isinstance(targets, list) and all(isinstance(t, dict) for t in targets)
            ):
                raise invalid_request(
                    "'targets' must be a list of {version, weight}", param="targets"
                )
            if targets is None and (isinstance(version, bool) or not isinstance(version, int)):
                raise invalid_request(
                    "'version' (an integer) or 'targets' is required", param="version"
                )
            return await asyncio.to_thread(
                registry.set_label,
                self.db,
                name,
                label,
                version=version,
                targets=targets,
                sticky=body.get("sticky"),
                actor=actor,
            )
        if tail == ["rollback"]:
            return await asyncio.to_thread(registry.rollback, self.db, name, label, actor=actor)
        raise APIError(404, f"No route {request.scope['path']}", code="not_found")

    async def render(self, request: Request, actor: registry.Actor) -> Any:
        name, tail, _ = self._path(request)
        if tail != ["render"]:
            raise APIError(404, f"No route {request.scope['path']}", code="not_found")
        return self._render(name, await request.json_object())

    def _render(self, name: str, body: dict[str, Any]) -> Any:
        spec = {k: body[k] for k in ("label", "version", "variables") if k in body}
        rendered, applied = self.prompts.apply(
            {"prompt": {"name": name, **spec}},
            user=body.get("user") if isinstance(body.get("user"), str) else None,
            session=body.get("session") if isinstance(body.get("session"), str) else None,
        )
        return {"name": name, "version": applied.version, **rendered}
