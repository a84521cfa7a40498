"""The authorisation matrix's cross-team cells, generated from the route table like the rest of
it (test_authorization.py): one team ("red") makes one resource of every kind that a keyed
``{id}`` route addresses, through the public API; another team ("blue") then calls every such
route, with every method and every sub-path, on red's ids. Blue must get what an id that names
nothing gets (a 404: a 403 would say the resource exists), never a 2xx or a 5xx; red still reads
every one of them, unchanged by blue's attempts. Blue's lists show nothing of red's. A keyed
``{id}`` route, or a keyed list, that this module does not know how to fill fails the test.

Where the documentation says another team may read a resource (a prompt, a fine-tuned model),
or that only the master key may act (cache eviction), the table says so, route by route, and
that is what is checked instead.
"""

from __future__ import annotations

import asyncio
import enum
import importlib.util
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from stackyard.server.app import Stackyard
from stackyard.server.parts import FINETUNE_MODULES
from stackyard.store import admin
from stackyard.store.db import Database
from tests.conftest import unavailable
from tests.fakes.openai_upstream import FakeOpenAI
from tests.gateway.test_model_lookup import add_job, model_dir
from tests.server.harness import running
from tests.server.test_authorization import classify

MASTER = "sk-master-crossteam-0123456789"
#: Red's names carry this mark, so that a list showing one of them is caught by a text search.
MARK = "c7e51d"
PROMPT = f"red-reply-{MARK}"
COLLECTION = f"red-handbook-{MARK}"
NAMESPACE = f"red-faq-{MARK}"
JOB = f"ftjob-red{MARK}"
TUNED = f"ft:base:red:{MARK}"
SCORE = f"red-score-{MARK}"
EXPERIMENT = f"red-eval-{MARK}"
DOCUMENT = f"red-doc-{MARK}"
#: Red's chat request: answered, traced, and cached in red's namespace.
QUESTION = {"model": "m", "messages": [{"role": "user", "content": f"hello from red {MARK}"}]}


class Expect(enum.Enum):
    #: As if it did not exist: the answer an id that names nothing gets, a 404.
    HIDDEN = "hidden"
    #: The master key's alone: every team key gets the same 403, whatever the id
    #: (docs/cache.md: "With the master key: DELETE /api/cache/entries/{id}").
    MASTER_ONLY = "master only"
    #: Readable by every team, as documented (docs/prompts.md: "other teams may read and use
    #: it"; a fine-tuned model is served to every key, docs/finetune.md#serving).
    SHARED_READ = "shared read"
    #: Changed by its owner alone, as documented (docs/prompts.md): a 403 for another team,
    #: whose reads already show it exists.
    OWNER_WRITES = "owner writes"


@dataclass(frozen=True)
class Probe:
    """One call on a route: what follows the id in the path, and the JSON body sent."""

    suffix: str = ""
    body: dict[str, Any] | None = None
    expect: Expect = Expect.HIDDEN


def _shared(*suffixes: str) -> tuple[Probe, ...]:
    return tuple(Probe(s, expect=Expect.SHARED_READ) for s in suffixes)


#: Every keyed ``{id}`` route (the ``/v1`` paths by their alias without it, so that both forms
#: are called), the kind of red's resource its id names, and the calls made on it.
ROUTES: dict[tuple[str, str], tuple[str, tuple[Probe, ...]]] = {
    ("GET", "/files/{id}"): ("file", (Probe(), Probe("/content"))),
    ("DELETE", "/files/{id}"): ("file", (Probe(),)),
    ("GET", "/batches/{id}"): ("batch", (Probe(),)),
    ("POST", "/batches/{id}"): ("batch", (Probe("/cancel"),)),
    ("GET", "/messages/batches/{id}"): ("message_batch", (Probe(), Probe("/results"))),
    ("POST", "/messages/batches/{id}"): ("message_batch", (Probe("/cancel"),)),
    ("DELETE", "/messages/batches/{id}"): ("message_batch", (Probe(),)),
    ("GET", "/responses/{id}"): ("response", (Probe(), Probe("/input_items"))),
    ("DELETE", "/responses/{id}"): ("response", (Probe(),)),
    ("GET", "/fine_tuning/jobs/{id}"): (
        "job",
        (Probe(), Probe("/events"), Probe("/checkpoints")),
    ),
    ("POST", "/fine_tuning/jobs/{id}"): (
        "job",
        (Probe("/cancel"), Probe("/pause"), Probe("/resume")),
    ),
    ("GET", "/models/{id}"): ("model", _shared("")),
    ("DELETE", "/models/{id}"): ("model", (Probe(),)),
    ("GET", "/api/traces/{id}"): ("trace", (Probe(), Probe("/spans"))),
    ("POST", "/api/traces/{id}"): (
        "trace",
        (Probe("/scores", {"name": "blue-score", "value": 0.0}),),
    ),
    ("GET", "/api/prompts/{id}"): (
        "prompt",
        _shared(
            "",
            "/versions/1",
            "/versions/latest",
            "/labels/production",
            "/diff?from=1&to=2",
            "/audit",
        ),
    ),
    ("POST", "/api/prompts/{id}"): (
        "prompt",
        (
            Probe("/labels", {"label": "production", "version": 2}, Expect.OWNER_WRITES),
            Probe("/rollback", {"label": "production"}, Expect.OWNER_WRITES),
            Probe("/render", {"label": "production", "variables": {"q": "hi"}}, Expect.SHARED_READ),
        ),
    ),
    ("GET", "/api/collections/{id}"): ("collection", (Probe(),)),
    ("PATCH", "/api/collections/{id}"): ("collection", (Probe("", {"chunk_size": 50}),)),
    ("POST", "/api/collections/{id}"): (
        "collection",
        (
            Probe("/query", {"query": "refunds"}),
            Probe("/sync"),
            Probe("/documents", {"documents": [{"id": "blue-doc", "text": "blue was here"}]}),
        ),
    ),
    ("DELETE", "/api/collections/{id}"): (
        "collection",
        (Probe(f"/documents/{DOCUMENT}"), Probe()),
    ),
    ("GET", "/api/experiments/{id}"): ("experiment", (Probe(),)),
    ("DELETE", "/api/cache/entries/{id}"): ("cache_entry", (Probe(expect=Expect.MASTER_ONLY),)),
    ("DELETE", "/api/cache/namespaces/{id}"): (
        "cache_namespace",
        (Probe(expect=Expect.MASTER_ONLY),),
    ),
}

#: Every keyed list (a keyed GET route without ``{id}``), its query, and the kinds of red's
#: resources red's own answer shows (blue's must show none of red's ids and names, except
#: those the documentation shares: ``SHARED_IN_LISTS``).
LISTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "/files": ("", ("file",)),
    "/batches": ("", ("batch",)),
    "/messages/batches": ("", ("message_batch",)),
    "/fine_tuning/jobs": ("", ("job",)),
    "/models": ("", ("model",)),
    "/api/traces": ("", ("trace",)),
    "/api/prompts": ("", ("prompt",)),
    "/api/collections": ("", ("collection",)),
    "/api/experiments": ("", ("experiment",)),
    "/api/scores": ("", ("score",)),
    "/api/stats": ("?group_by=team", ("team",)),
}
#: What blue's lists may show of red's, as documented: every team sees every prompt (with
#: the team that owns it) and every fine-tuned model served here.
SHARED_IN_LISTS: dict[str, tuple[str, ...]] = {
    "/models": ("model",),
    "/api/prompts": ("prompt", "team"),
}


def _config(fake_openai: FakeOpenAI, tmp_path: Path) -> dict[str, Any]:
    upstream = fake_openai.base_url("xteam")
    return {
        "models": [
            {"name": "m", "provider": "openai-compatible", "api_base": upstream},
            {
                "name": "text-embedding-3-small",
                "provider": "openai-compatible",
                "api_base": upstream,
            },
            {
                "name": "base",
                "provider": "local",
                "model": str(model_dir(tmp_path / "base")),
                "options": {"load": "lazy"},
            },
        ],
        "auth": {"master_key": MASTER},
        "database_url": f"sqlite:///{tmp_path / 'crossteam.db'}",
        "cache": {"mode": "exact"},
        "batches": {"poll_seconds": 0.1},
        "finetune": {"data_dir": str(tmp_path / "jobs")},
        "rag": {"stores": {"default": {"kind": "embedded", "path": str(tmp_path / "rag.db")}}},
    }


async def until(check: Callable[[], Awaitable[bool]], bound: float = 60.0) -> bool:
    """Whether ``check`` comes true within ``bound`` seconds (``tests.conftest.eventually``
    for the server in this event loop, which a blocking wait would stop)."""
    deadline = time.monotonic() + bound
    while not await check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def absent_like(identifier: str) -> str:
    """An id of the same shape as ``identifier`` that names nothing."""
    tail = "0" * 6 if not identifier.endswith("0" * 6) else "1" * 6
    return identifier[: -len(tail)] + tail


def json_of(answer: httpx.Response) -> Any:
    assert answer.status_code < 300, f"{answer.request.url}: {answer.status_code} {answer.text}"
    return answer.json()


@dataclass
class Red:
    """Red's resources: each kind's id, as a route names it."""

    ids: dict[str, str]
    headers: dict[str, str]

    def paths(self, method: str, route: str) -> list[str]:
        """The paths ``route``'s probes call on red's resource."""
        kind, probes = ROUTES[(method, route.removeprefix("/v1"))]
        return [route.replace("{id}", self.ids[kind]) + p.suffix for p in probes]


async def make_red(
    app: Stackyard, client: httpx.AsyncClient, key: str, key_id: str, team_id: str
) -> Red:
    """One resource of every kind, made by red through the public API (the fine-tuned job and
    model are made by ``make_tuned``, before the app starts)."""
    headers = bearer(key)
    ids: dict[str, str] = {"team": team_id, "key": key_id, "model": TUNED, "job": JOB}
    line = {"custom_id": "q0", "method": "POST", "url": "/v1/chat/completions", "body": QUESTION}
    uploaded = await client.post(
        "/v1/files",
        headers=headers,
        data={"purpose": "batch"},
        files={"file": ("red.jsonl", json.dumps(line).encode() + b"\n")},
    )
    ids["file"] = json_of(uploaded)["id"]
    batch = await client.post(
        "/v1/batches",
        headers=headers,
        json={
            "input_file_id": ids["file"],
            "endpoint": "/v1/chat/completions",
            "completion_window": "24h",
        },
    )
    ids["batch"] = json_of(batch)["id"]
    message_batch = await client.post(
        "/v1/messages/batches",
        headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
        json={
            "requests": [
                {
                    "custom_id": "a",
                    "params": {
                        "model": "m",
                        "max_tokens": 5,
                        "messages": [{"role": "user", "content": "hi"}],
                    },
                }
            ]
        },
    )
    ids["message_batch"] = json_of(message_batch)["id"]
    response = await client.post(
        "/v1/responses", headers=headers, json={"model": "m", "input": "hi"}
    )
    ids["response"] = json_of(response)["id"]

    # A chat answer: its trace, and a cache entry in a namespace of red's.
    answered = await client.post(
        "/v1/chat/completions",
        headers={**headers, "x-stackyard-cache-namespace": NAMESPACE},
        json=QUESTION,
    )
    json_of(answered)
    assert answered.headers["x-stackyard-cache"] == "miss"
    ids["trace"] = answered.headers["x-request-id"]
    hits: list[str] = []

    async def cached() -> bool:  # the entry is written after the answer
        again = await client.post(
            "/v1/chat/completions",
            headers={**headers, "x-stackyard-cache-namespace": NAMESPACE},
            json=QUESTION,
        )
        hits[:] = [again.headers.get("x-stackyard-cache-id", "")]
        return bool(again.headers.get("x-stackyard-cache") == "exact")

    assert await until(cached), "red's answer was never cached"
    ids["cache_entry"] = hits[0]
    ids["cache_namespace"] = NAMESPACE

    async def traced() -> bool:  # traces are written in batches, within a second or so
        trace = await client.get(f"/api/traces/{ids['trace']}", headers=headers)
        return trace.status_code == 200

    assert await until(traced), "red's trace was never written"
    scored = await client.post(
        f"/api/traces/{ids['trace']}/scores", headers=headers, json={"name": SCORE, "value": 1.0}
    )
    json_of(scored)
    ids["score"] = SCORE

    for version, template in enumerate(("Answer {{q}}", "Answer briefly: {{q}}"), 1):
        pushed = await client.post(
            "/api/prompts",
            headers=headers,
            json={"name": PROMPT, "template": template, "labels": ["production"]},
        )
        assert json_of(pushed)["version"] == version
    ids["prompt"] = PROMPT

    created = await client.post(
        "/api/collections",
        headers=headers,
        json={"name": COLLECTION, "embedding_model": "text-embedding-3-small"},
    )
    json_of(created)
    pushed = await client.post(
        f"/api/collections/{COLLECTION}/documents",
        headers=headers,
        json={"documents": [{"id": DOCUMENT, "text": "Refunds are paid within 14 days."}]},
    )
    json_of(pushed)
    ids["collection"] = COLLECTION

    run = {
        "name": EXPERIMENT,
        "target": "m",
        "started_at": 1_764_000_000.0,
        "seconds": 1.0,
        "results": [
            {
                "item_id": "item-0",
                "output": "yes",
                "scores": {"f1": 1.0},
                "reasons": {},
                "latency_ms": 10.0,
            }
        ],
    }
    recorded = await client.post("/api/experiments", headers=headers, json={"run": run})
    ids["experiment"] = json_of(recorded)["id"]

    # Wait for what is written in the background: both batches ended, the response stored,
    # the trace written with its score, the tuned model served.
    async def settled() -> bool:
        openai_batch = await client.get(f"/v1/batches/{ids['batch']}", headers=headers)
        anthropic_batch = await client.get(
            f"/v1/messages/batches/{ids['message_batch']}", headers=headers
        )
        stored = await client.get(f"/v1/responses/{ids['response']}", headers=headers)
        trace = await client.get(f"/api/traces/{ids['trace']}", headers=headers)
        return (
            openai_batch.json().get("status") == "completed"
            and anthropic_batch.json().get("processing_status") == "ended"
            and stored.status_code == 200
            and trace.status_code == 200
            and SCORE in trace.text
            and TUNED in app.gateway.router.deployments
        )

    assert await until(settled), "red's batches, response, trace or model never settled"
    return Red(ids, headers)


def make_tuned(url: str, red_team: str, tmp_path: Path) -> None:
    """Red's fine-tuning job, succeeded, and its model: rows as a finished job leaves them
    (training is not started)."""
    db = Database(url)
    add_job(db, JOB, red_team, model=TUNED, folder=model_dir(tmp_path / JOB))
    db.dispose()


async def blue_on_red(
    client: httpx.AsyncClient, red: Red, blue: dict[str, str], routes: list[tuple[str, str]]
) -> list[str]:
    """Blue calls every probe of every route on red's id, and on an id of the same shape that
    names nothing; what went wrong."""
    problems: list[str] = []
    # Mutations last, so that one that wrongly succeeds is seen by the reads after it too.
    order = {"GET": 0, "PATCH": 1, "POST": 2, "DELETE": 3}
    for method, route in sorted(routes, key=lambda e: (order[e[0]], e[1])):
        kind, probes = ROUTES[(method, route.removeprefix("/v1"))]
        real, absent = red.ids[kind], absent_like(red.ids[kind])
        for probe in probes:
            path = route.replace("{id}", real) + probe.suffix
            called = f"blue {method} {path}"
            answer = await client.request(method, path, json=probe.body, headers=blue)
            nothing = await client.request(
                method, route.replace("{id}", absent) + probe.suffix, json=probe.body, headers=blue
            )
            status = answer.status_code
            if status >= 500 or nothing.status_code >= 500:
                problems.append(f"{called}: {status} (nothing: {nothing.status_code})")
            elif probe.expect is Expect.SHARED_READ:
                if status != 200:
                    problems.append(f"{called}: {status}, a documented shared read")
            elif 200 <= status < 300:
                problems.append(f"{called}: {status} {answer.text[:200]}")
            elif probe.expect is Expect.OWNER_WRITES:
                if status != 403:
                    problems.append(f"{called}: {status}, not the owner's 403")
            elif status != (wanted := 403 if probe.expect is Expect.MASTER_ONLY else 404):
                problems.append(f"{called}: {status}, not {wanted}: {answer.text[:200]}")
            elif answer.text.replace(real, absent) != nothing.text or nothing.status_code != status:
                problems.append(
                    f"{called}: {answer.text[:300]} differs from an id that names nothing: "
                    f"{nothing.status_code} {nothing.text[:300]}"
                )
    return problems


async def lists_keep_apart(
    client: httpx.AsyncClient, red: Red, blue: dict[str, str], lists: list[str]
) -> list[str]:
    """Red's lists show red's resources; blue's show nothing of red's but what is shared."""
    problems: list[str] = []
    for route in lists:
        query, kinds = LISTS[route.removeprefix("/v1")]
        own = await client.get(route + query, headers=red.headers)
        for kind in kinds:
            if own.status_code != 200 or red.ids[kind] not in own.text:
                problems.append(f"red GET {route}{query} does not show its {kind}")
        other = await client.get(route + query, headers=blue)
        if other.status_code != 200:
            problems.append(f"blue GET {route}{query}: {other.status_code}")
        shared = SHARED_IN_LISTS.get(route.removeprefix("/v1"), ())
        for kind, identifier in red.ids.items():
            if kind not in shared and identifier in other.text:
                problems.append(f"blue GET {route}{query} shows red's {kind} {identifier}")
    return problems


async def cache_keeps_apart(client: httpx.AsyncClient, red: Red, blue: dict[str, str]) -> list[str]:
    """Red's cache entry outlived blue's evictions, and blue's identical request missed it."""
    problems: list[str] = []
    again = await client.post(
        "/v1/chat/completions",
        headers={**red.headers, "x-stackyard-cache-namespace": NAMESPACE},
        json=QUESTION,
    )
    if again.headers.get("x-stackyard-cache") != "exact":
        problems.append("red's cache entry did not survive blue's evictions")
    elif again.headers.get("x-stackyard-cache-id") != red.ids["cache_entry"]:
        problems.append("red's cache answer came from another entry")
    theirs = await client.post(
        "/v1/chat/completions",
        headers={**blue, "x-stackyard-cache-namespace": NAMESPACE},
        json=QUESTION,
    )
    if theirs.headers.get("x-stackyard-cache") != "miss":
        problems.append(f"blue was answered from red's cache: {dict(theirs.headers)}")
    # The master key evicts red's entry: the id blue tried was real.
    evicted = await client.delete(
        f"/api/cache/entries/{red.ids['cache_entry']}", headers=bearer(MASTER)
    )
    if evicted.status_code != 200:
        problems.append(f"master DELETE of red's cache entry: {evicted.status_code}")
    return problems


async def test_no_team_reaches_another_teams_resources(
    fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    missing = [m for m in FINETUNE_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        unavailable(f"serving fine-tuned models needs {', '.join(missing)} (the finetune extra)")
    config = _config(fake_openai, tmp_path)
    db = Database(config["database_url"])
    db.migrate()
    red_team = admin.create_team(db, "red")["id"]
    admin.create_team(db, "blue")
    red_key = admin.create_key(db, "red")
    blue = bearer(admin.create_key(db, "blue").key)
    db.dispose()
    make_tuned(config["database_url"], red_team, tmp_path)

    problems: list[str] = []
    async with running(config) as (app, client):
        red = await make_red(app, client, red_key.key, red_key.record["id"], red_team)
        endpoints = sorted(app.routes.endpoints(), key=lambda e: (e[1], e[0]))
        keyed = [(m, r) for m, r in endpoints if classify(m, r) == "keyed"]
        routes = [(m, r) for m, r in keyed if "{id}" in r]
        unknown = [f"{m} {r}" for m, r in routes if (m, r.removeprefix("/v1")) not in ROUTES]
        assert not unknown, f"keyed {{id}} routes this test cannot fill: {unknown}"
        lists = [r for m, r in keyed if m == "GET" and "{id}" not in r]
        unlisted = [r for r in lists if r.removeprefix("/v1") not in LISTS]
        assert not unlisted, f"keyed lists this test does not check: {unlisted}"
        # A stale entry in the tables would be a route no longer checked.
        assert {(m, r.removeprefix("/v1")) for m, r in routes} == set(ROUTES)
        assert {r.removeprefix("/v1") for r in lists} == set(LISTS)

        # Every read of red's resources, as red: each is real, and is kept to compare.
        gets = [path for m, route in routes if m == "GET" for path in red.paths(m, route)]
        before = {path: await client.get(path, headers=red.headers) for path in gets}
        problems += [
            f"red GET {path}: {answer.status_code}, its own resource"
            for path, answer in before.items()
            if answer.status_code != 200
        ]

        problems += await blue_on_red(client, red, blue, routes)

        # Red's resources are as they were.
        for path, earlier in before.items():
            after = await client.get(path, headers=red.headers)
            if (after.status_code, after.content) != (earlier.status_code, earlier.content):
                problems.append(f"red GET {path} changed after blue's calls: {after.text[:300]}")
        problems += await cache_keeps_apart(client, red, blue)
        problems += await lists_keep_apart(client, red, blue, lists)
    assert not problems, "\n".join(problems)
