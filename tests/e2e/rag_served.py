"""The gateways the RAG end-to-end tests run against: one on the embedded vector store and one
on PostgreSQL with pgvector, each over the fake OpenAI upstream (chat, embeddings, rerank), and
the helpers the tests share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import GatewayProcess, openai_sdk
from tests.fakes.openai_upstream import FakeOpenAI

STORES = ["embedded", "pgvector"]


@dataclass(frozen=True)
class Served:
    process: GatewayProcess
    kind: str  # the vector store

    @property
    def url(self) -> str:
        return self.process.url

    @property
    def base_url(self) -> str:
        return self.process.base_url


MASTER = "sk-master-rag-0123456789"
HEADERS = {"authorization": f"Bearer {MASTER}"}
HANDBOOK = {
    "holidays.md": "# Holidays\n\nEvery employee gets 27 days of paid holiday a year.\n",
    "expenses.md": "# Expenses\n\nTaxi receipts are refunded within 14 days of the trip.\n",
    "security.md": "# Security\n\nLaptops must use full-disk encryption at all times.\n",
}


def serve_rag(
    request: pytest.FixtureRequest, fake_openai: FakeOpenAI, gateway_factory: Any
) -> Served:
    """A gateway over the fake upstream on the vector store that ``request.param`` names
    (``embedded`` or ``pgvector``)."""
    store: dict[str, Any] = {"kind": "embedded"}
    if request.param == "pgvector":
        store = {"kind": "pgvector", "url": request.getfixturevalue("pgvector_server")}
    gw: GatewayProcess = gateway_factory(
        {
            "models": [
                {
                    "name": "chat",
                    "provider": "openai-compatible",
                    "api_base": fake_openai.base_url(f"rag-chat-{request.param}"),
                },
                {
                    "name": "embed",
                    "provider": "openai-compatible",
                    "model": "text-embedding-3-small",
                    "api_base": fake_openai.base_url(f"rag-embed-{request.param}"),
                },
                {
                    "name": "rerank",
                    "provider": "openai-compatible",
                    "model": "BAAI/bge-reranker-v2-m3",
                    "api_base": fake_openai.base_url(f"rag-rerank-{request.param}"),
                    "options": {"rerank": True},
                },
            ],
            "auth": {"master_key": MASTER, "refresh_seconds": 0.2},
            "rag": {"stores": {"default": store}, "embedding_model": "embed"},
        }
    )
    return Served(gw, request.param)


def api(gateway: Served, method: str, path: str, *, key: str = MASTER, **body: Any) -> Any:
    response = httpx.request(
        method,
        f"{gateway.url}/api/collections{path}",
        json=body or None,
        headers={"authorization": f"Bearer {key}"},
    )
    assert response.status_code == 200, response.text
    return response.json()


def sdk(gateway: Served, key: str = MASTER) -> openai.OpenAI:
    return openai_sdk(gateway.process, key)


def embedded_texts(fake: FakeOpenAI, gateway: Served) -> int:
    requests = fake.requests_for(f"rag-embed-{gateway.kind}")
    return sum(len(r.body["input"]) for r in requests)
