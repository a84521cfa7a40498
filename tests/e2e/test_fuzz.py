"""Fuzzing, bounded, with schemathesis: cases generated from the admin API's own OpenAPI
document (``/admin/openapi.json``), from OpenAI's (the operations the gateway serves, sliced
from ``../shared/data/openai-openapi`` by ``data/openai_slice.py``) and, for the console's JSON
API (``/api/...``, which has no OpenAPI document of its own yet), from a plain one built from
the route table (each route, its path's id, a few query parameters, any JSON object as a
body), valid and invalid, against a real ``stackyard serve``. No case may get a 5xx, and the
server must still be ready afterwards.

``STACKYARD_FUZZ_EXAMPLES`` sets the cases per operation and mode (default 25: each operation
gets up to 50, valid and invalid; CI's time is the bound)."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import GatewayProcess, need_module
from tests.fakes.openai_upstream import FakeOpenAI

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

MASTER = "sk-master-fuzz-0123456789abc"
OPENAI_SLICE = Path(__file__).with_name("data") / "openai-openapi-served.json.gz"
EXAMPLES = int(os.environ.get("STACKYARD_FUZZ_EXAMPLES", "25"))


def config(fake_openai: FakeOpenAI, database: Path) -> dict[str, Any]:
    return {
        "models": [
            {
                "name": "m",
                "provider": "openai-compatible",
                "api_base": fake_openai.base_url("fz"),
            }
        ],
        "auth": {"master_key": MASTER},
        "database_url": f"sqlite:///{database}",
        "router": {"retries": 0},
    }


@pytest.fixture(scope="module")
def gateway(
    fake_openai: FakeOpenAI, gateway_factory: Any, tmp_path_factory: pytest.TempPathFactory
) -> GatewayProcess:
    database = tmp_path_factory.mktemp("fuzz") / "fuzz.db"
    gw: GatewayProcess = gateway_factory(config(fake_openai, database))
    return gw


def fuzz(schema: Any, base_url: str, headers: dict[str, str]) -> tuple[int, list[str]]:
    """Every operation of ``schema``, valid and invalid cases: (cases sent, problems)."""
    hypothesis = need_module("hypothesis")
    from schemathesis import GenerationMode

    problems: list[str] = []
    sent = 0

    def check(where: str) -> Any:
        def one(case: Any) -> None:
            nonlocal sent
            sent += 1
            response = case.call(base_url=base_url, headers=headers, timeout=30)
            if response.status_code >= 500:
                problems.append(
                    f"{where}: {response.status_code} for {case.as_curl_command()[:500]}"
                )

        return one

    settings = hypothesis.settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(hypothesis.HealthCheck),
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    )
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            where = f"{operation.label} ({mode.value})"
            cases = operation.as_strategy(generation_mode=mode)
            run = settings(hypothesis.given(cases)(check(where)))
            try:
                run()
            except hypothesis.errors.Unsatisfiable:
                continue  # no invalid case exists (any string is a valid id)
            except Exception as exc:  # a crash of the call itself (a reset connection...)
                problems.append(f"{where}: {type(exc).__name__}: {exc}")
    return sent, problems


def test_the_admin_api_never_answers_5xx(gateway: GatewayProcess) -> None:
    schemathesis = need_module("schemathesis")
    headers = {"authorization": f"Bearer {MASTER}"}
    document = httpx.get(f"{gateway.url}/admin/openapi.json", headers=headers).json()
    schema = schemathesis.openapi.from_dict(document)
    sent, problems = fuzz(schema, gateway.url, headers)
    assert sent > 100
    assert not problems, "\n".join(problems[:20])
    assert httpx.get(f"{gateway.url}/ready").status_code == 200


def test_openais_operations_never_answer_5xx(gateway: GatewayProcess) -> None:
    schemathesis = need_module("schemathesis")
    document = json.loads(gzip.decompress(OPENAI_SLICE.read_bytes()))
    assert len(document["paths"]) >= 15
    schema = schemathesis.openapi.from_dict(document)
    headers = {"authorization": f"Bearer {MASTER}"}
    sent, problems = fuzz(schema, gateway.base_url, headers)
    assert sent > 500
    assert not problems, "\n".join(problems[:20])
    assert httpx.get(f"{gateway.url}/ready").status_code == 200


#: Query parameters the console API's routes read (strings to the fuzzer).
QUERY = ("q", "limit", "since", "name", "team_id", "after", "label", "group_by", "model")


def console_api_document(routes: list[tuple[str, str]]) -> dict[str, Any]:
    """A plain OpenAPI document of the ``/api/...`` routes."""
    paths: dict[str, dict[str, Any]] = {}
    for method, path in routes:
        if not path.startswith("/api/"):
            continue
        operation: dict[str, Any] = {
            "parameters": [
                {"name": name, "in": "query", "required": False, "schema": {"type": "string"}}
                for name in QUERY
            ],
            "responses": {"default": {"description": "any"}},
        }
        if "{id}" in path:
            operation["parameters"].append(
                {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
            )
        if method in ("POST", "PATCH", "PUT"):
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": {"type": "object"}}},
            }
        paths.setdefault(path, {})[method.lower()] = operation
    return {"openapi": "3.0.3", "info": {"title": "console API", "version": "0"}, "paths": paths}


def test_the_console_api_never_answers_5xx(
    gateway: GatewayProcess, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    schemathesis = need_module("schemathesis")
    from stackyard.config.loader import validate
    from stackyard.gateway.providers import registry
    from stackyard.server.app import Stackyard

    built = Stackyard(
        validate(config(fake_openai, tmp_path / "routes.db"), known_providers=registry.names())
    )
    document = console_api_document(built.routes.endpoints())
    assert len(document["paths"]) >= 10
    schema = schemathesis.openapi.from_dict(document)
    headers = {"authorization": f"Bearer {MASTER}"}
    sent, problems = fuzz(schema, gateway.url, headers)
    assert sent > 300
    assert not problems, "\n".join(problems[:20])
    assert httpx.get(f"{gateway.url}/ready").status_code == 200
