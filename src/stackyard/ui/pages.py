"""The console's pages, served by ``stackyard serve`` at ``/ui``:

GET  /ui                    the playground (or the login page)
GET  /ui/login, POST        log in with a virtual key or the master key
POST /ui/logout
GET  /ui/playground         chat with models and registry prompts side by side (playground.py)
GET  /ui/traces             the traces the key may see, filtered and paginated
GET  /ui/traces/{id}        one trace: its spans as a waterfall, bodies, scores
POST /ui/traces/{id}        feedback on it (a good or bad answer, a comment), as a score
GET  /ui/keys, POST         keys and teams (master key only): create, change limits, revoke
GET  /ui/static/{file}      the console's stylesheet and scripts

The other pages are a module each: playground.py, dashboard.py, experiments.py (evaluations),
collections.py (RAG) and jobs.py (fine-tuning).

Every page reads the gateway's APIs in process as the session's key, so it shows exactly
what that key may see through the API. Sessions, the anti-forgery tokens and the security
headers: session.py and sessions.py.
"""

from __future__ import annotations

import asyncio
import importlib.resources
import json
import urllib.parse
from typing import Any

import jinja2

from stackyard.auth.admission import Governance
from stackyard.auth.keys import hash_key
from stackyard.auth.principal import OPEN, Principal
from stackyard.errors import APIError
from stackyard.gateway.router import Router
from stackyard.server.http import Request, Response
from stackyard.server.routing import Handler, Reply, Routes
from stackyard.ui import forms
from stackyard.ui.collections import CollectionPages
from stackyard.ui.dashboard import DashboardPage
from stackyard.ui.experiments import ExperimentPages
from stackyard.ui.forms import HTML, message, number, redirect, rows
from stackyard.ui.jobs import JobPages
from stackyard.ui.playground import PlaygroundPages
from stackyard.ui.session import (
    COOKIE,
    LOGIN_COOKIE,
    MASTER_SUBJECT,
    OPEN_SUBJECT,
    SECURITY_HEADERS,
    Caller,
    cleared_cookies,
    cookies,
    login_token_cookie,
    new_token,
    same_origin,
    same_token,
    secure,
    session_cookie,
)
from stackyard.ui.sessions import Sessions

STATIC_TYPES = {".css": b"text/css; charset=utf-8", ".js": b"text/javascript; charset=utf-8"}
NAV = (
    ("playground", "Playground"),
    ("prompts", "Prompts"),
    ("traces", "Traces"),
    ("dashboard", "Dashboard"),
    ("evals", "Evaluations"),
    ("rag", "RAG"),
    ("finetune", "Fine-tuning"),
    ("keys", "Keys and teams"),
)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("stackyard.ui", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["ms"] = lambda v: "" if v is None else f"{v:,.0f} ms"
    env.filters["usd"] = lambda v: "" if v is None else f"${v:,.6f}".rstrip("0").rstrip(".")
    env.filters["when"] = lambda v: (v or "").replace("T", " ")[:19]
    env.filters["stamp"] = forms.stamp
    # Bodies as people read them (autoescaping makes them safe in the page).
    env.filters["pretty"] = lambda v: json.dumps(v, indent=2, ensure_ascii=False)
    return env


class Console:
    def __init__(
        self,
        routes: Routes,
        chat: Handler,
        governance: Governance,
        router: Router,
        *,
        max_body_bytes: int,
        sessions: Sessions,
        secure_cookies: bool = False,
    ) -> None:
        self.routes = routes
        self.chat = chat
        self.governance = governance
        self.router = router
        self.sessions = sessions
        self.secure_cookies = secure_cookies
        self.call = Caller(routes, max_body_bytes, self.principal_of)
        self.env = _environment()

    def register(self, routes: Routes) -> None:
        routes.add("GET", ["/ui", "/ui/"], self.home)
        routes.add("GET", ["/ui/login"], self.login_page)
        routes.add("POST", ["/ui/login"], self.login)
        routes.add("POST", ["/ui/logout"], self.logout)
        PlaygroundPages(self).register(routes)
        routes.add("GET", ["/ui/prompts"], self.page(self.prompts))
        routes.add("POST", ["/ui/prompts"], self.page(self.push_prompt))
        routes.add_prefix("GET", "/ui/prompts/", self.page(self.prompt))
        routes.add_prefix("POST", "/ui/prompts/", self.page(self.prompt_action))
        routes.add("GET", ["/ui/traces"], self.page(self.traces))
        routes.add_prefix("GET", "/ui/traces/", self.page(self.trace))
        routes.add_prefix("POST", "/ui/traces/", self.page(self.feedback))
        DashboardPage(self).register(routes)
        routes.add("GET", ["/ui/keys"], self.page(self.keys))
        routes.add("POST", ["/ui/keys"], self.page(self.keys_action))
        routes.add_prefix("GET", "/ui/static/", self.static)
        JobPages(self).register(routes)
        CollectionPages(self).register(routes)
        ExperimentPages(self).register(routes)

    # -- rendering and access ------------------------------------------------------------------

    def render(self, template: str, status: int = 200, **context: Any) -> Response:
        text = self.env.get_template(template).render(nav=NAV, **context)
        headers = [(b"cache-control", b"no-store"), *SECURITY_HEADERS]
        return Response(status, text.encode(), headers, HTML)

    def principal_of(self, subject: str) -> Principal | None:
        """Who a session's subject is now: None once its key is revoked or has expired, or the
        master key is no longer the server's."""
        governance = self.governance
        if subject == MASTER_SUBJECT:
            return governance.current("master")
        if subject == OPEN_SUBJECT:
            return governance.current(None)
        if subject.startswith("key:") and governance.snapshot is not None:
            key = governance.snapshot.keys.get(subject[4:])
            if key is not None:
                return governance.current(key.key_id, key)
        return None

    async def session(self, request: Request) -> tuple[str, str, list[tuple[bytes, bytes]]] | None:
        """(subject, anti-forgery token, cookies to set) of the browser's session. On an open
        gateway, where there is nothing to log in with, a session is opened at once."""
        token = cookies(request).get(COOKIE)
        found = await asyncio.to_thread(self.sessions.get, token) if token else None
        if found is not None and self.principal_of(found.subject) is not None:
            return found.subject, found.csrf, []
        if found is not None and token:  # its key was revoked, or keys were turned on
            await asyncio.to_thread(self.sessions.end, token)
        if self.governance.open:
            return await self._start(request, OPEN_SUBJECT)
        return None

    async def _start(
        self, request: Request, subject: str
    ) -> tuple[str, str, list[tuple[bytes, bytes]]]:
        token, created = await asyncio.to_thread(self.sessions.create, subject)
        max_age = int(self.sessions.lifetime.total_seconds())
        cookie = session_cookie(token, max_age, secure(request, self.secure_cookies))
        return subject, created.csrf, [cookie]

    def page(self, view: Any) -> Handler:
        """A page for a session: others go to the login page. A POST must come from the
        console's own pages: this server's origin, and the session's anti-forgery token."""

        async def handler(request: Request) -> Reply:
            found = await self.session(request)
            if found is None:
                had = COOKIE in cookies(request)
                target = (
                    "/ui/login?expired=1"
                    if had
                    else "/ui/login?next=" + urllib.parse.quote(request.path)
                )
                return redirect(target, *cleared_cookies())
            subject, csrf, set_cookies = found
            viewer = self.viewer(subject, csrf)
            if request.method == "POST":
                refusal = await self._forged(request, csrf)
                if refusal is not None:
                    return self.render("refused.html", 403, viewer=viewer, what=refusal, active="")
            reply: Reply = await view(request, subject, viewer)
            if set_cookies and isinstance(reply, Response):
                reply.headers = [*reply.headers, *set_cookies]
            return reply

        return handler

    async def _forged(self, request: Request, csrf: str) -> str | None:
        """Why a POST is refused as a cross-site request, if it is."""
        if not same_origin(request):
            return "This form was sent from another site."
        if not same_token(forms.form(await request.body()).get("csrf"), csrf):
            return "This form has expired or did not come from this console: reload the page."
        return None

    def viewer(self, subject: str, csrf: str = "") -> Viewer:
        principal = self.principal_of(subject) or OPEN
        allowed = principal.models
        models = [m for m in self.router.model_names if allowed is None or m in allowed]
        return Viewer(principal, models, csrf=csrf, open=subject == OPEN_SUBJECT)

    async def refused(self, viewer: Viewer, what: str) -> Response:
        return self.render("refused.html", 403, viewer=viewer, what=what, active="")

    # -- login ---------------------------------------------------------------------------------

    async def home(self, request: Request) -> Reply:
        found = await self.session(request)
        reply = redirect("/ui/playground" if found else "/ui/login")
        if found is not None:
            reply.headers = [*reply.headers, *found[2]]
        return reply

    async def login_page(self, request: Request, error: str | None = None) -> Reply:
        if self.governance.open:  # nothing to log in with
            return redirect(_local_target(request.query.get("next", "")))
        if error is None and "expired" in request.query:
            error = "Your session has ended, or its key is no longer valid: log in again."
        token = new_token()
        reply = self.render(
            "login.html",
            401 if error and request.method == "POST" else 200,
            error=error,
            next=request.query.get("next", "/ui/playground"),
            login_csrf=token,
        )
        reply.headers.append(login_token_cookie(token, secure(request, self.secure_cookies)))
        return reply

    async def login(self, request: Request) -> Reply:
        form = forms.form(await request.body())
        key = form.get("key", "").strip()
        target = _local_target(form.get("next", ""))
        if self.governance.open:  # no keys to check: in
            return redirect(target)
        # No login CSRF: the form must come from this server's own login page.
        if not same_origin(request) or not same_token(
            form.get("csrf"), cookies(request).get(LOGIN_COOKIE, "")
        ):
            return await self.login_page(
                request, "This login form has expired or came from another site: try again."
            )
        if not key:
            return await self.login_page(request, "Enter a key.")
        try:
            principal = self.governance.authenticate(_bearer(request, key))
        except APIError as exc:
            return await self.login_page(request, exc.message)
        subject = MASTER_SUBJECT if principal.master else f"key:{hash_key(key)}"
        _, _, set_cookies = await self._start(request, subject)
        return redirect(target, *cleared_cookies()[1:], *set_cookies)

    async def logout(self, request: Request) -> Reply:
        token = cookies(request).get(COOKIE)
        found = await asyncio.to_thread(self.sessions.get, token) if token else None
        if found is not None:
            if await self._forged(request, found.csrf) is not None:
                return redirect("/ui/playground")  # a forged logout: ignored
            await asyncio.to_thread(self.sessions.end, token or "")
        return redirect("/ui/login", *cleared_cookies())

    # -- prompts -------------------------------------------------------------------------------

    async def prompts(
        self, request: Request, key: str, viewer: Viewer, error: str | None = None
    ) -> Reply:
        _, listed = await self.call(key, "GET", "/api/prompts")
        return self.render(
            "prompts.html",
            400 if error else 200,
            viewer=viewer,
            active="prompts",
            prompts=rows(listed),
            error=error,
        )

    async def push_prompt(self, request: Request, key: str, viewer: Viewer) -> Reply:
        form = forms.form(await request.body())
        name = form.get("name", "").strip()
        body = {"name": name, "template": form.get("template", ""), "message": form.get("message")}
        status, answer = await self.call(key, "POST", "/api/prompts", body=body)
        if status != 200:
            return await self.prompts(request, key, viewer, error=message(answer))
        return redirect(f"/ui/prompts/{urllib.parse.quote(name)}?version={answer['version']}")

    async def prompt(
        self, request: Request, key: str, viewer: Viewer, error: str | None = None
    ) -> Reply:
        name = urllib.parse.unquote(request.path.removeprefix("/ui/prompts/").strip("/"))
        base = f"/api/prompts/{urllib.parse.quote(name)}"
        status, found = await self.call(key, "GET", base)
        if status != 200:
            return self.render(
                "refused.html", status, viewer=viewer, active="prompts", what=message(found)
            )
        versions = [v["version"] for v in found["versions"]]
        params = request.query
        shown = number(params.get("version")) or (versions[-1] if versions else None)
        _, version = await self.call(key, "GET", f"{base}/versions/{shown}")
        diff = None
        old, new = number(params.get("from")), number(params.get("to"))
        if old and new:
            _, diff = await self.call(key, "GET", f"{base}/diff", {"from": old, "to": new})
        _, audit = await self.call(key, "GET", f"{base}/audit")
        _, runs = await self.call(key, "GET", "/api/experiments", {"prompt": name, "limit": 200})
        evaluated: dict[int, dict[str, Any]] = {}
        for run in rows(runs):  # newest first: the first seen is a version's latest
            evaluated.setdefault(run["prompt_version"], run)
        return self.render(
            "prompt.html",
            400 if error else 200,
            viewer=viewer,
            active="prompts",
            prompt=found,
            versions=versions,
            version=version if isinstance(version, dict) and "version" in version else None,
            diff=diff if isinstance(diff, dict) and "text" in diff else None,
            audit=list(reversed(rows(audit))),
            evaluated=evaluated,
            error=error,
        )

    async def prompt_action(self, request: Request, key: str, viewer: Viewer) -> Reply:
        name = urllib.parse.unquote(request.path.removeprefix("/ui/prompts/").strip("/"))
        base = f"/api/prompts/{urllib.parse.quote(name)}"
        form = forms.form(await request.body())
        label = form.get("label", "").strip()
        if form.get("action") == "rollback":
            status, answer = await self.call(key, "POST", f"{base}/rollback", body={"label": label})
        else:
            body = {"label": label, "version": number(form.get("version"))}
            status, answer = await self.call(key, "POST", f"{base}/labels", body=body)
        if status != 200:
            return await self.prompt(request, key, viewer, error=message(answer))
        return redirect(f"/ui/prompts/{urllib.parse.quote(name)}")

    # -- traces --------------------------------------------------------------------------------

    async def traces(self, request: Request, key: str, viewer: Viewer) -> Reply:
        params = request.query
        filters = {name: params.get(name, "") for name in ("model", "status", "q", "since")}
        status, found = await self.call(
            key,
            "GET",
            "/api/traces",
            {**filters, "limit": 25, "before": params.get("before")},
        )
        error = message(found) if status != 200 else None
        rows = found.get("data", []) if status == 200 else []
        more = found.get("next_before") if status == 200 else None
        return self.render(
            "traces.html",
            viewer=viewer,
            active="traces",
            rows=rows,
            filters=filters,
            error=error,
            next_page="?" + urllib.parse.urlencode({**filters, "before": more}) if more else None,
        )

    async def feedback(self, request: Request, key: str, viewer: Viewer) -> Reply:
        """A thumbs up or down, with a comment, as a score of the trace."""
        identifier = request.path.removeprefix("/ui/traces/").strip("/")
        form = forms.form(await request.body())
        body = {
            "name": form.get("name", "").strip() or "feedback",
            "value": form.get("value") == "1",
            "data_type": "boolean",
            "comment": form.get("comment", "").strip() or None,
            "source": "user",
        }
        status, answer = await self.call(key, "POST", f"/api/traces/{identifier}/scores", body=body)
        if status != 200:
            return await self.trace(request, key, viewer, error=message(answer))
        return redirect(f"/ui/traces/{urllib.parse.quote(identifier)}#feedback")

    async def trace(
        self, request: Request, key: str, viewer: Viewer, error: str | None = None
    ) -> Reply:
        identifier = request.path.removeprefix("/ui/traces/").strip("/")
        status, trace = await self.call(key, "GET", f"/api/traces/{identifier}")
        if status != 200:
            return self.render(
                "refused.html",
                404,
                viewer=viewer,
                active="traces",
                what=f"No trace '{identifier}' that this key may see.",
            )
        return self.render(
            "trace.html",
            400 if error else 200,
            viewer=viewer,
            active="traces",
            trace=trace,
            waterfall=_waterfall(trace),
            error=error,
        )

    # -- keys and teams (master key) -----------------------------------------------------------

    async def keys(
        self,
        request: Request,
        key: str,
        viewer: Viewer,
        created: Any = None,
        error: Any = None,
        notice: str | None = None,
    ) -> Reply:
        if not viewer.master:
            return await self.refused(viewer, "Keys and teams are for the master key.")
        _, teams = await self.call(key, "GET", "/admin/teams")
        _, keys = await self.call(key, "GET", "/admin/keys")
        return self.render(
            "keys.html",
            400 if error else 200,
            viewer=viewer,
            active="keys",
            teams=rows(teams),
            keys=rows(keys),
            created=created,
            error=error,
            notice=notice,
        )

    async def keys_action(self, request: Request, key: str, viewer: Viewer) -> Reply:
        if not viewer.master:
            return await self.refused(viewer, "Keys and teams are for the master key.")
        form = forms.form(await request.body())
        action = form.get("action")
        created = None
        if action == "team":
            body: dict[str, Any] = {"name": form.get("name", "")}
            body.update(_controls(form))
            status, answer = await self.call(key, "POST", "/admin/teams", body=body)
        elif action == "key":
            body = {"team": form.get("team", ""), "name": form.get("name") or None}
            body.update(_controls(form))
            status, answer = await self.call(key, "POST", "/admin/keys", body=body)
            created = answer if status == 200 else None
        elif action in ("update-team", "update-key"):
            try:
                body = _limits(form)
            except ValueError as exc:
                return await self.keys(request, key, viewer, error=str(exc))
            if action == "update-team":
                body["team"] = form.get("team", "")
                status, answer = await self.call(key, "POST", "/admin/teams/update", body=body)
            else:
                body["id"] = form.get("id", "")
                status, answer = await self.call(key, "POST", "/admin/keys/update", body=body)
        elif action == "revoke":
            status, answer = await self.call(
                key, "POST", "/admin/keys/revoke", body={"id": form.get("id", "")}
            )
        else:
            status, answer = 400, {"error": {"message": "unknown action"}}
        error = message(answer) if status >= 400 else None
        notice = None
        if error is None and action in ("update-team", "update-key"):
            notice = f"Limits saved for {answer.get('name') or answer.get('id')}."
        return await self.keys(request, key, viewer, created=created, error=error, notice=notice)

    # -- static files --------------------------------------------------------------------------

    async def static(self, request: Request) -> Reply:
        name = request.path.removeprefix("/ui/static/")
        kind = STATIC_TYPES.get(name[name.rfind(".") :]) if "." in name else None
        if kind is None or "/" in name or name.startswith("."):
            raise APIError(404, f"no such file: {name}", code="not_found")
        data = importlib.resources.files("stackyard.ui").joinpath("static", name)
        if not data.is_file():
            raise APIError(404, f"no such file: {name}", code="not_found")
        headers = [(b"cache-control", b"max-age=300"), (b"x-content-type-options", b"nosniff")]
        return Response(200, data.read_bytes(), headers, kind)


def _local_target(target: str) -> str:
    """Where to go after logging in: a console page, never another site."""
    if not target.startswith("/ui/") or target.startswith("//"):
        return "/ui/playground"
    return target


def _bearer(request: Request, key: str) -> Request:
    """``request`` as if it came with ``Authorization: Bearer KEY`` (to check a key)."""
    headers = [
        (name, value)
        for name, value in request.scope["headers"]
        if name not in (b"authorization", b"x-api-key", b"cookie")
    ]
    headers.append((b"authorization", f"Bearer {key}".encode("latin-1", "replace")))
    return Request({**request.scope, "headers": headers}, request.receive, max_body_bytes=0)


class Viewer:
    """The session, as the pages need it: the models its key may use, whether it is the
    master key, whether the gateway is open (no keys at all: nobody logs in), and the
    anti-forgery token its forms carry."""

    def __init__(
        self, principal: Principal, models: list[str], *, csrf: str = "", open: bool = False
    ) -> None:
        self.models = models
        self.master = principal.master
        self.key_hint = principal.key_id or ""
        self.csrf = csrf
        self.open = open


def _controls(form: dict[str, str]) -> dict[str, Any]:
    """Models, limits and a budget from a form (blank: not set)."""
    found: dict[str, Any] = {}
    if form.get("models", "").strip():
        found["models"] = [m.strip() for m in form["models"].split(",") if m.strip()]
    for name in ("rpm", "tpm"):
        if form.get(name, "").strip().isdigit():
            found[name] = int(form[name])
    try:
        if form.get("budget_usd", "").strip():
            found["budget_usd"] = float(form["budget_usd"])
    except ValueError:
        pass
    return found


def _limits(form: dict[str, str]) -> dict[str, Any]:
    """Every limit of an edit form: a blank field clears its limit."""
    found: dict[str, Any] = {}
    text = form.get("models", "").strip()
    found["models"] = [m.strip() for m in text.split(",") if m.strip()] or None
    for name, label in (("rpm", "Requests a minute"), ("tpm", "Tokens a minute")):
        value = form.get(name, "").strip()
        if value and not value.isdigit():
            raise ValueError(f"{label} must be a whole number, or blank for no limit")
        found[name] = int(value) if value else None
    value = form.get("budget_usd", "").strip()
    try:
        found["budget_usd"] = float(value) if value else None
    except ValueError:
        raise ValueError("The budget must be a number of USD, or blank for none") from None
    return found


def _waterfall(trace: dict[str, Any]) -> list[dict[str, Any]]:
    """The spans in tree order, each with its depth, and its offset and width as percentages
    of the trace's time."""
    spans = trace.get("spans", {}).get("data", [])
    if not spans:
        return []
    start = min(s["start_ns"] for s in spans)
    total = max(max(s["end_ns"] for s in spans) - start, 1)
    ids = {s["span_id"] for s in spans}
    children: dict[str | None, list[dict[str, Any]]] = {}
    for span in spans:
        parent = span.get("parent_id") if span.get("parent_id") in ids else None
        children.setdefault(parent, []).append(span)
    rows: list[dict[str, Any]] = []

    def walk(parent: str | None, depth: int) -> None:
        for span in sorted(children.get(parent, ()), key=lambda s: s["start_ns"]):
            rows.append(
                {
                    "name": span["name"],
                    "left": 100 * (span["start_ns"] - start) / total,
                    "width": max(100 * (span["end_ns"] - span["start_ns"]) / total, 0.3),
                    "ms": span["duration_ms"],
                    "depth": depth,
                    "error": span.get("status") == "error",
                    "attributes": span.get("attributes") or {},
                }
            )
            walk(span["span_id"], depth + 1)

    walk(None, 0)
    return rows
