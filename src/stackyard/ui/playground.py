"""The console's playground:

GET  /ui/playground         chat with any model the key may use, with a registry prompt (by
                            label or version, its variables in a form) or without; compare
                            models or prompt versions side by side; save what was typed as a
                            new prompt version
POST /ui/api/chat           the gateway's chat call, as the cookie's key
GET  /ui/api/prompt         ?name=&ref=: one prompt version (a label or a number), for its form
POST /ui/api/prompts        push a new prompt version (the registry's own push)

The ``/ui/api/`` calls are made by the playground's script: they need the console's header
(a page on another site cannot send it) and the login cookie.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stackyard.errors import APIError
from stackyard.server.http import Request, Response
from stackyard.server.routing import Reply, Routes
from stackyard.ui import forms
from stackyard.ui.session import UI_HEADER, as_principal

if TYPE_CHECKING:
    from stackyard.ui.pages import Console, Viewer


async def script_subject(request: Request, console: Console) -> str:
    """The session's subject of a call from the console's script (else the API's error)."""
    if request.header(UI_HEADER) != b"1":
        raise APIError(403, "console calls must carry x-stackyard-ui: 1", code="forbidden")
    found = await console.session(request)
    if found is None or found[2]:  # none, or one opened just now (no page asked for it)
        raise APIError(401, "log in to the console first", code="invalid_api_key")
    return found[0]


class PlaygroundPages:
    def __init__(self, console: Console) -> None:
        self.console = console

    def register(self, routes: Routes) -> None:
        routes.add("GET", ["/ui/playground"], self.console.page(self.playground))
        routes.add("POST", ["/ui/api/chat"], self.chat_call)
        routes.add("GET", ["/ui/api/prompt"], self.prompt_version)
        routes.add("POST", ["/ui/api/prompts"], self.push)

    async def playground(self, request: Request, key: str, viewer: Viewer) -> Reply:
        console = self.console
        prices = {}
        for name in viewer.models:
            found = console.router.deployments.get(name)
            price = console.governance.price(found[0] if found else None)
            prices[name] = (price.input, price.output)  # USD a million tokens, for streams
        _, listed = await console.call(key, "GET", "/api/prompts")
        prompts = [
            {"name": p["name"], "labels": sorted(p.get("labels") or {})} for p in forms.rows(listed)
        ]
        chosen = request.query.get("model")
        return console.render(
            "playground.html",
            viewer=viewer,
            active="playground",
            prices=prices,
            prompts=prompts,
            chosen=chosen if chosen in viewer.models else None,
            prompt=request.query.get("prompt", ""),
        )

    async def chat_call(self, request: Request) -> Reply:
        """The gateway's chat endpoint as the session's key (the key never reaches the page)."""
        subject = await script_subject(request, self.console)
        principal = self.console.principal_of(subject)
        if principal is None:
            raise APIError(401, "log in to the console first", code="invalid_api_key")
        return await self.console.chat(as_principal(request, principal))

    async def prompt_version(self, request: Request) -> Reply:
        key = await script_subject(request, self.console)
        name = request.query.get("name", "")
        ref = request.query.get("ref", "").strip() or "latest"
        if not name:
            raise APIError(400, "'name' is required: a prompt's name", param="name")
        base = f"/api/prompts/{forms.quoted(name)}"
        path = (
            f"{base}/versions/{ref}"
            if ref.isdigit() or ref == "latest"
            else f"{base}/labels/{forms.quoted(ref)}"
        )
        status, found = await self.console.call(key, "GET", path)
        return Response.json(found, status=status)

    async def push(self, request: Request) -> Reply:
        key = await script_subject(request, self.console)
        body = await request.json_object()
        status, answer = await self.console.call(key, "POST", "/api/prompts", body=body)
        return Response.json(answer, status=status)
