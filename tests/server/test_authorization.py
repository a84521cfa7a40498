"""The authorisation matrix, generated from the route table, so that a new route cannot escape
it: every route, with no key, a wrong key, a team's key and the master key, against what its
class of route allows. A route the table does not classify fails the test."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stackyard.store import admin
from stackyard.store.db import Database
from tests.fakes.openai_upstream import FakeOpenAI
from tests.server.harness import running

MASTER = "sk-master-matrix-0123456789"

#: Routes anyone may call: the process's health, the server's index, the console's login page
#: and its static files (the console's own pages go through its sessions, below).
PUBLIC = {
    ("GET", "/"),
    ("GET", "/health"),
    ("GET", "/ready"),
    ("GET", "/ui/login"),
    ("POST", "/ui/login"),
    ("POST", "/ui/logout"),
    ("GET", "/ui/static/{id}"),
    ("GET", "/ui"),
    ("GET", "/ui/"),
}
#: Routes for the master key alone (a scrape token also reads /metrics).
MASTER_ONLY_PREFIXES = ("/admin/",)
MASTER_ONLY = {("GET", "/metrics")}
#: Routes for any valid key, each seeing its own team's data.
KEYED_PREFIXES = ("/v1/", "/api/")
KEYED_ALIASES = {  # the same doors without /v1, as OpenAI-compatible clients may call them
    "/chat/completions",
    "/embeddings",
    "/rerank",
    "/models",
    "/models/{id}",
    "/files",
    "/fine_tuning/jobs",
    "/messages",
    "/messages/count_tokens",
    "/messages/batches",
    "/messages/batches/{id}",
    "/responses",
    "/responses/{id}",
    "/completions",
    "/batches",
    "/batches/{id}",
}
#: Console pages: a session cookie, never a bearer key (their own tests cover sessions).
CONSOLE_PREFIX = "/ui/"


def classify(method: str, path: str) -> str:
    if (method, path) in PUBLIC:
        return "public"
    if path.startswith(MASTER_ONLY_PREFIXES) or (method, path) in MASTER_ONLY:
        return "master"
    if path.startswith(KEYED_PREFIXES) or path in KEYED_ALIASES:
        return "keyed"
    if path.startswith(CONSOLE_PREFIX):
        return "console"
    raise AssertionError(f"{method} {path} is in no class of the authorisation matrix")


async def test_every_route_against_every_kind_of_caller(
    fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    config: dict[str, Any] = {
        "models": [
            {"name": "m", "provider": "openai-compatible", "api_base": fake_openai.base_url("az")}
        ],
        "auth": {"master_key": MASTER},
        "database_url": f"sqlite:///{tmp_path / 'matrix.db'}",
    }
    db = Database(config["database_url"])
    db.migrate()
    admin.create_team(db, "red")
    red = admin.create_key(db, "red").key
    db.dispose()
    callers = {
        "none": {},
        "wrong": {"authorization": "Bearer sk-sy-not-a-key-0000000000"},
        "team": {"authorization": f"Bearer {red}"},
        "master": {"authorization": f"Bearer {MASTER}"},
    }
    problems: list[str] = []
    async with running(config) as (app, client):
        endpoints = sorted(app.routes.endpoints(), key=lambda e: (e[1], e[0]))
        assert len(endpoints) > 60
        for method, route in endpoints:
            kind = classify(method, route)
            path = route.replace("{id}", "nothing-here")
            for caller, headers in callers.items():
                body: dict[str, Any] | None = {} if method in ("POST", "PATCH") else None
                answer = await client.request(method, path, json=body, headers=headers)
                status = answer.status_code
                if status >= 500:
                    problems.append(f"{caller} {method} {route}: {status}")
                if kind == "public":
                    continue
                if kind == "console":
                    # No session: a page sends the browser to log in; a script's call is refused.
                    if caller != "master" and 200 <= status < 300:
                        problems.append(f"{caller} {method} {route}: {status} without a session")
                    continue
                refused = status in (401, 403)
                if caller in ("none", "wrong") and status != 401:
                    problems.append(f"{caller} {method} {route}: {status}, not 401")
                elif caller == "team" and kind == "master" and status != 403:
                    problems.append(f"{caller} {method} {route}: {status}, not 403")
                elif caller == "team" and kind == "keyed" and status == 401:
                    problems.append(f"{caller} {method} {route}: refused a valid key")
                elif caller == "master" and refused:
                    problems.append(f"{caller} {method} {route}: {status} for the master key")
    assert not problems, "\n".join(problems)
