"""RAG through real gateways, on the embedded store and on PostgreSQL with pgvector: create a
collection over a folder, sync it through the API, query it, push and delete documents, and
answer a chat request (whole and streamed) with citations through the OpenAI SDK. A team key
sees only its team's collections; names are per team, so two teams may each have one of a
name, and the master key names the team whose collection it means."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from stackyard.client import Client
from stackyard.client.base import ClientError
from tests.e2e.rag_served import (
    HANDBOOK,
    HEADERS,
    MASTER,
    STORES,
    Served,
    api,
    embedded_texts,
    sdk,
    serve_rag,
)
from tests.fakes.openai_upstream import FakeOpenAI

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module", params=STORES)
def gateway(
    request: pytest.FixtureRequest, fake_openai: FakeOpenAI, gateway_factory: Any
) -> Served:
    return serve_rag(request, fake_openai, gateway_factory)


@pytest.fixture(scope="module")
def handbook(gateway: Served, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("rag") / "handbook"
    folder.mkdir()
    for name, text in HANDBOOK.items():
        (folder / name).write_text(text)
    created = api(gateway, "POST", "", name="handbook", sources=[{"path": str(folder)}])
    assert created["embedding_model"] == "embed"
    report = api(gateway, "POST", "/handbook/sync")
    assert (report["added"], report["chunks_embedded"]) == (3, 3)
    return folder


def test_a_query_finds_the_passage(gateway: Served, handbook: Path) -> None:
    found = api(gateway, "POST", "/handbook/query", query="taxi receipts", mode="keyword")
    assert found["data"][0]["source"] == "handbook/expenses.md"
    assert found["data"][0]["metadata"]["section"] == "Expenses"
    hybrid = api(gateway, "POST", "/handbook/query", query="taxi receipts refunded", top_k=3)
    assert len(hybrid["data"]) == 3
    assert {h["source"] for h in hybrid["data"]} == {f"handbook/{n}" for n in HANDBOOK}
    shown = api(gateway, "GET", "/handbook")
    assert (shown["documents"], shown["chunks"]) == (3, 3)


def test_a_resync_embeds_only_the_changed_file(
    gateway: Served, handbook: Path, fake_openai: FakeOpenAI
) -> None:
    before = embedded_texts(fake_openai, gateway)
    path = handbook / "holidays.md"
    path.write_text("# Holidays\n\nEvery employee gets 30 days of paid holiday a year.\n")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    report = api(gateway, "POST", "/handbook/sync")
    assert (report["changed"], report["unchanged"], report["chunks_embedded"]) == (1, 2, 1)
    assert embedded_texts(fake_openai, gateway) == before + 1
    found = api(gateway, "POST", "/handbook/query", query="paid holiday days", mode="keyword")
    assert "30 days" in found["data"][0]["text"]
    assert not any("27 days" in h["text"] for h in found["data"])


def test_a_chat_request_answers_with_citations(
    gateway: Served, handbook: Path, fake_openai: FakeOpenAI
) -> None:
    rag = {"collections": ["handbook"], "top_k": 2, "mode": "keyword"}
    with sdk(gateway) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="chat",
            messages=[{"role": "user", "content": "How do I get taxi receipts refunded?"}],
            extra_body={"rag": rag},
        )
        reply = raw.parse()
    assert raw.headers["x-stackyard-rag-citations"] == "2"
    citations = (reply.model_extra or {})["citations"]
    assert citations[0]["index"] == 1
    assert citations[0]["source"] == "handbook/expenses.md"
    assert "Taxi receipts" in citations[0]["text"]
    upstream = fake_openai.requests_for(f"rag-chat-{gateway.kind}")[-1].body
    assert "rag" not in upstream
    system = upstream["messages"][0]
    assert system["role"] == "system"
    assert "[1] (source: handbook/expenses.md)" in system["content"]
    assert upstream["messages"][1]["content"] == "How do I get taxi receipts refunded?"


def test_a_streamed_chat_request_carries_citations_in_its_first_chunk(
    gateway: Served, handbook: Path
) -> None:
    with sdk(gateway) as client:
        stream = client.chat.completions.create(
            model="chat",
            messages=[{"role": "user", "content": "Which laptops need encryption?"}],
            stream=True,
            extra_body={"rag": {"collections": ["handbook"], "top_k": 1, "mode": "keyword"}},
        )
        chunks = list(stream)
    first = (chunks[0].model_extra or {})["citations"]
    assert [c["source"] for c in first] == ["handbook/security.md"]
    assert all("citations" not in (c.model_extra or {}) for c in chunks[1:])
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def test_the_messages_door_answers_with_citations_too(
    gateway: Served, handbook: Path, fake_openai: FakeOpenAI
) -> None:
    """RAG behind Anthropic's Messages API: the passages go in ``system`` (after the request's
    own), and come back as ``citations``, whole and in a stream's ``message_start``."""
    rag = {"collections": ["handbook"], "top_k": 1, "mode": "keyword"}
    question: Any = [{"role": "user", "content": "How do I get taxi receipts refunded?"}]
    with anthropic.Anthropic(
        base_url=gateway.url, api_key=MASTER, max_retries=0, _strict_response_validation=True
    ) as client:
        raw = client.messages.with_raw_response.create(
            model="chat",
            max_tokens=64,
            system="Be brief.",
            messages=question,
            extra_body={"rag": rag},
        )
        assert raw.headers["x-stackyard-rag-citations"] == "1"
        citations = (raw.parse().model_extra or {})["citations"]
        assert [c["source"] for c in citations] == ["handbook/expenses.md"]
        upstream = fake_openai.requests_for(f"rag-chat-{gateway.kind}")[-1].body
        assert "rag" not in upstream
        system = upstream["messages"][0]["content"]
        assert system.startswith("Be brief.")
        assert "[1] (source: handbook/expenses.md)" in system
        with client.messages.stream(
            model="chat", max_tokens=64, messages=question, extra_body={"rag": rag}
        ) as stream:
            text = "".join(stream.text_stream)
            final = stream.get_final_message()
    assert text.endswith("How do I get taxi receipts refunded?")
    assert [c["source"] for c in (final.model_extra or {})["citations"]] == ["handbook/expenses.md"]


def test_the_completions_door_answers_with_citations_too(
    gateway: Served, handbook: Path, fake_openai: FakeOpenAI
) -> None:
    """RAG behind the legacy completions door: the prompt is the question, the passages a
    system message before it, and the citations ride on the answer."""
    rag = {"collections": ["handbook"], "top_k": 1, "mode": "keyword"}
    question = "How do I get taxi receipts refunded?"
    with sdk(gateway) as client:
        raw = client.completions.with_raw_response.create(
            model="chat", prompt=question, extra_body={"rag": rag}
        )
    assert raw.headers["x-stackyard-rag-citations"] == "1"
    assert [c["source"] for c in raw.http_response.json()["citations"]] == ["handbook/expenses.md"]
    assert raw.parse().choices[0].text == f"[rag-chat-{gateway.kind}] echo: {question}"
    upstream = fake_openai.requests_for(f"rag-chat-{gateway.kind}")[-1].body
    assert "rag" not in upstream
    assert [m["role"] for m in upstream["messages"]] == ["system", "user"]
    assert "[1] (source: handbook/expenses.md)" in upstream["messages"][0]["content"]


def test_the_responses_door_answers_with_citations_too(
    gateway: Served, handbook: Path, fake_openai: FakeOpenAI
) -> None:
    """RAG behind OpenAI's Responses API: the passages go in a system message after the
    instructions, and come back as the Response's ``citations`` (whole, and on a stream's
    ``response.created`` and ``response.completed``)."""
    rag = {"collections": ["handbook"], "top_k": 1, "mode": "keyword"}
    question = "How do I get taxi receipts refunded?"
    with sdk(gateway) as client:
        raw = client.responses.with_raw_response.create(
            model="chat", instructions="Be brief.", input=question, extra_body={"rag": rag}
        )
        assert raw.headers["x-stackyard-rag-citations"] == "1"
        citations = raw.http_response.json()["citations"]
        assert [c["index"] for c in citations] == [1]
        assert [c["source"] for c in citations] == ["handbook/expenses.md"]
        assert "Taxi receipts" in citations[0]["text"]
        response = raw.parse()
        assert (response.model_extra or {})["citations"] == citations
        assert response.output_text == f"[rag-chat-{gateway.kind}] echo: {question}"
        upstream = fake_openai.requests_for(f"rag-chat-{gateway.kind}")[-1].body
        assert "rag" not in upstream
        assert [m["role"] for m in upstream["messages"]] == ["system", "system", "user"]
        assert upstream["messages"][0]["content"] == "Be brief."
        assert "[1] (source: handbook/expenses.md)" in upstream["messages"][1]["content"]
        assert upstream["messages"][2]["content"] == question
        with client.responses.stream(
            model="chat", input=question, extra_body={"rag": rag}
        ) as stream:
            events = list(stream)
            final = stream.get_final_response()
    created, completed = events[0], events[-1]
    assert created.type == "response.created"
    assert completed.type == "response.completed"
    for shown in (created.response, completed.response, final):
        assert [c["source"] for c in (shown.model_extra or {})["citations"]] == [
            "handbook/expenses.md"
        ]
    assert final.output_text == response.output_text


def test_pushed_documents_are_searchable_and_deletable(gateway: Served) -> None:
    api(gateway, "POST", "", name="notes")
    pushed = api(
        gateway,
        "POST",
        "/notes/documents",
        documents=[
            {"id": "n1", "text": "The wifi password rotates monthly.", "metadata": {"t": "it"}},
            {"id": "n2", "text": "Lunch is served at noon.", "metadata": {"t": "office"}},
        ],
    )
    assert pushed["added"] == 2
    found = api(gateway, "POST", "/notes/query", query="wifi lunch", filter={"t": "office"})
    assert [h["source"] for h in found["data"]] == ["n2"]
    api(gateway, "DELETE", "/notes/documents/n2")
    found = api(gateway, "POST", "/notes/query", query="lunch noon", mode="keyword")
    assert found["data"] == []
    api(gateway, "DELETE", "/notes")
    missing = httpx.get(f"{gateway.url}/api/collections/notes", headers=HEADERS)
    assert missing.status_code == 404


def test_mistakes_get_openai_shaped_errors(gateway: Served, handbook: Path) -> None:
    with sdk(gateway) as client:
        with pytest.raises(openai.NotFoundError) as missing:
            client.chat.completions.create(
                model="chat",
                messages=[{"role": "user", "content": "hi"}],
                extra_body={"rag": {"collections": ["nope"]}},
            )
        assert missing.value.code == "collection_not_found"
        with pytest.raises(openai.BadRequestError) as bad:
            client.chat.completions.create(
                model="chat",
                messages=[{"role": "user", "content": "hi"}],
                extra_body={"rag": {"collections": ["handbook"], "top_k": 0}},
            )
        assert bad.value.code == "invalid_rag"
    for body, code in [
        ({"name": "bad name!"}, "invalid_collection"),
        ({"name": "x", "embedding_model": "chat-typo"}, "invalid_collection"),
        ({"name": "x", "chunk_size": 10, "chunk_overlap": 20}, "invalid_collection"),
        ({"name": "handbook"}, "collection_exists"),
    ]:
        response = httpx.post(f"{gateway.url}/api/collections", json=body, headers=HEADERS)
        assert response.status_code in (400, 409), response.text
        assert response.json()["error"]["code"] == code
    response = httpx.post(
        f"{gateway.url}/api/collections/handbook/query",
        json={"query": "x", "filter": {"bad field'": 1}},
        headers=HEADERS,
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_query"


LAPTOPS = "laptops full disk encryption"  # every word is in security.md, none in the others


def test_a_rerank_model_reorders_the_candidates(
    gateway: Served, handbook: Path, fake_openai: FakeOpenAI
) -> None:
    rerank = {"model": "rerank", "candidates": 3}
    found = api(gateway, "POST", "/handbook/query", query=LAPTOPS, top_k=2, rerank=rerank)
    assert next(h["source"] for h in found["data"]) == "handbook/security.md"
    assert [h["rerank_score"] for h in found["data"]] == [1.0, 0.0]
    assert found["data"][0]["score"] > 0  # the retriever's own score is kept
    (asked,) = fake_openai.requests_for(f"rag-rerank-{gateway.kind}")[-1:]
    assert asked.body["query"] == LAPTOPS
    assert asked.body["model"] == "BAAI/bge-reranker-v2-m3"
    assert len(asked.body["documents"]) == 3 == asked.body["top_n"]  # all candidates, once
    plain = api(gateway, "POST", "/handbook/query", query=LAPTOPS, top_k=2)
    assert {h["rerank_score"] for h in plain["data"]} == {None}


def test_a_collection_can_rerank_by_default(gateway: Served, handbook: Path) -> None:
    changed = api(gateway, "PATCH", "/handbook", rerank={"model": "rerank", "candidates": 3})
    assert changed["rerank"] == {"model": "rerank", "candidates": 3}
    try:
        found = api(gateway, "POST", "/handbook/query", query=LAPTOPS, top_k=1)
        assert found["data"][0]["rerank_score"] == 1.0
        unranked = api(gateway, "POST", "/handbook/query", query=LAPTOPS, top_k=1, rerank=False)
        assert unranked["data"][0]["rerank_score"] is None
        with sdk(gateway) as client:
            reply = client.chat.completions.create(
                model="chat",
                messages=[{"role": "user", "content": "Do laptops need full disk encryption?"}],
                extra_body={"rag": {"collections": ["handbook"], "top_k": 1}},
            )
        (citation,) = (reply.model_extra or {})["citations"]
        assert citation["source"] == "handbook/security.md"
        assert citation["rerank_score"] is not None
    finally:
        api(gateway, "PATCH", "/handbook", rerank=None)


def test_the_rerank_endpoint(gateway: Served, fake_openai: FakeOpenAI) -> None:
    """``POST /v1/rerank`` in the shape Cohere, Jina and vLLM share, through the router."""
    documents = ["Bees make honey.", {"text": "Laptops need full disk encryption."}, "Taxis."]
    response = httpx.post(
        f"{gateway.base_url}/rerank",
        json={
            "model": "rerank",
            "query": LAPTOPS,
            "documents": documents,
            "top_n": 2,
            "return_documents": True,
        },
        headers=HEADERS,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == "rerank"
    assert [r["index"] for r in body["results"]] == [1, 0]
    assert body["results"][0]["relevance_score"] == 1.0
    assert body["results"][0]["document"] == {"text": "Laptops need full disk encryption."}
    assert body["usage"]["prompt_tokens"] > 0
    sent = fake_openai.requests_for(f"rag-rerank-{gateway.kind}")[-1].body
    assert sent["documents"][1] == "Laptops need full disk encryption."  # objects flattened
    assert sent["top_n"] == 3  # every score comes back; the gateway keeps the best two
    for wrong, code in [
        ({"model": "rerank", "documents": ["x"]}, "invalid_request_error"),
        ({"model": "rerank", "query": "x", "documents": []}, "invalid_request_error"),
        ({"model": "chat", "query": "x", "documents": ["y"]}, "invalid_request_error"),
    ]:
        refused = httpx.post(f"{gateway.base_url}/rerank", json=wrong, headers=HEADERS)
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"]["type"] == code
    refused = httpx.post(
        f"{gateway.base_url}/rerank",
        json={"model": "chat", "query": "x", "documents": ["y"]},
        headers=HEADERS,
    )
    assert refused.json()["error"]["code"] == "unsupported_operation"


def test_reranking_mistakes_are_clear_400s(gateway: Served, handbook: Path) -> None:
    for rerank, message in [
        ({"model": "nope"}, "no model 'nope'"),
        ({"model": "rerank", "candidates": 0}, "candidates"),
    ]:
        response = httpx.post(
            f"{gateway.url}/api/collections/handbook/query",
            json={"query": "x", "rerank": rerank},
            headers=HEADERS,
        )
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == "invalid_query"
        assert message in response.json()["error"]["message"]
    response = httpx.patch(
        f"{gateway.url}/api/collections/handbook",
        json={"rerank": {"model": "nope"}},
        headers=HEADERS,
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_collection"
    with sdk(gateway) as client, pytest.raises(openai.BadRequestError) as chat:
        client.chat.completions.create(model="rerank", messages=[{"role": "user", "content": "hi"}])
    assert chat.value.code == "unsupported_operation"


def test_a_team_key_sees_only_its_team(gateway: Served, handbook: Path) -> None:
    team = httpx.post(
        f"{gateway.url}/admin/teams",
        json={"name": f"support-{gateway.kind}"},
        headers=HEADERS,
    ).json()
    key = httpx.post(
        f"{gateway.url}/admin/keys", json={"team": team["id"]}, headers=HEADERS
    ).json()["key"]
    deadline = time.monotonic() + 60  # the instance learns of the key at its next poll
    while (
        httpx.get(
            f"{gateway.url}/api/collections", headers={"authorization": f"Bearer {key}"}
        ).status_code
        == 401
    ):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    mine = api(gateway, "POST", "", key=key, name=f"support-notes-{gateway.kind}")
    assert mine["team_id"] == team["id"]
    listed = api(gateway, "GET", "", key=key)
    assert [c["name"] for c in listed["data"]] == [mine["name"]]
    hidden = httpx.post(
        f"{gateway.url}/api/collections/handbook/query",
        json={"query": "taxi"},
        headers={"authorization": f"Bearer {key}"},
    )
    assert hidden.status_code == 404
    folders = httpx.post(
        f"{gateway.url}/api/collections",
        json={"name": "sneaky", "sources": [{"path": "/etc"}]},
        headers={"authorization": f"Bearer {key}"},
    )
    assert folders.status_code == 403


def test_the_python_client(gateway: Served) -> None:
    docs = Client(gateway.url, MASTER).collections
    docs.create("client-notes", chunk_size=50, chunk_overlap=5)
    report = docs.push("client-notes", [{"id": "a", "text": "Backups run nightly at 2am."}])
    assert report["added"] == 1
    assert docs.get("client-notes")["documents"] == 1
    assert "client-notes" in [c["name"] for c in docs.list()]
    found = docs.query("client-notes", "when do backups run", mode="keyword")
    assert found[0]["source"] == "a"
    docs.remove("client-notes", "a")
    assert docs.query("client-notes", "backups", mode="keyword") == []
    assert docs.update("client-notes", description="ops")["description"] == "ops"
    with pytest.raises(ClientError) as missing:
        docs.get("nope")
    assert missing.value.status == 404
    docs.delete("client-notes")


def test_a_registry_prompt_can_carry_the_passages(
    gateway: Served, handbook: Path, fake_openai: FakeOpenAI
) -> None:
    pushed = httpx.post(
        f"{gateway.url}/api/prompts",
        json={
            "name": f"handbook-context-{gateway.kind}",
            "template": "Notes:\n{{passages}}\nAnswer this from the notes: {{question}}",
            "variables": {"passages": {"type": "string"}, "question": {"type": "string"}},
            "labels": ["production"],
        },
        headers=HEADERS,
    )
    assert pushed.status_code == 200, pushed.text
    rag = {
        "collections": ["handbook"],
        "top_k": 1,
        "mode": "keyword",
        "prompt": f"handbook-context-{gateway.kind}:production",
    }
    with sdk(gateway) as client:
        client.chat.completions.create(
            model="chat",
            messages=[{"role": "user", "content": "Is disk encryption required?"}],
            extra_body={"rag": rag},
        )
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(
                model="chat",
                messages=[{"role": "user", "content": "hi"}],
                extra_body={"rag": {**rag, "prompt": "no-such-prompt"}},
            )
    upstream = fake_openai.requests_for(f"rag-chat-{gateway.kind}")[-1].body
    system = upstream["messages"][0]["content"]
    assert system.startswith("Notes:\n[1] (source: handbook/security.md)")
    assert system.endswith("Answer this from the notes: Is disk encryption required?")
