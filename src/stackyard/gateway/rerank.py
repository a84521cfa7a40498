"""``POST /v1/rerank``: the query scored against each document by a rerank model, in the
shape Cohere, Jina, vLLM and Infinity share (``{model, query, documents, top_n,
return_documents}`` in; ``{results: [{index, relevance_score, document?}]}`` out, best
first). Keys, limits, budgets, spend and traces apply as for embeddings; PII is redacted from
the query and documents before they leave for an external provider."""

from __future__ import annotations

from typing import Any

from stackyard.gateway.accounting import settled_json
from stackyard.gateway.deployment import Deployment
from stackyard.gateway.providers.base import Body, UpstreamError
from stackyard.gateway.router import Routed, RouteStats
from stackyard.gateway.service import Gateway
from stackyard.gateway.token_counts import count_prompt
from stackyard.gateway.translate.common import new_id
from stackyard.gateway.wire import validate_rerank
from stackyard.guardrails.stages import pii_vault, redacted_for
from stackyard.server.http import Request, Response


def change_rerank(body: Body, change: Any) -> Body:
    """A copy of a rerank request with ``change`` applied to its query and documents."""
    return {
        **body,
        "query": change(body["query"]),
        "documents": [change(d) for d in body["documents"]],
    }


def scored(result: Body, count: int) -> dict[int, float]:
    """Each document's score, by its index, from a ``/rerank`` answer of ``count``
    documents; an answer that is not that shape is the upstream's failure."""
    rows = result.get("results")
    if not isinstance(rows, list):
        raise UpstreamError("invalid_response", "the rerank answer has no 'results'")
    scores: dict[int, float] = {}
    for row in rows:
        index = row.get("index") if isinstance(row, dict) else None
        score = row.get("relevance_score") if isinstance(row, dict) else None
        if not isinstance(index, int) or not 0 <= index < count:
            raise UpstreamError("invalid_response", f"a rerank result's index is {index!r}")
        if not isinstance(score, int | float) or isinstance(score, bool):
            raise UpstreamError("invalid_response", f"a rerank result's score is {score!r}")
        scores[index] = float(score)
    return scores


def _results(result: Body, texts: list[str], top_n: int, documents: bool) -> list[Body]:
    scores = scored(result, len(texts))
    out: list[Body] = []
    for index in sorted(scores, key=lambda i: -scores[i])[:top_n]:
        item: Body = {"index": index, "relevance_score": scores[index]}
        if documents:
            item["document"] = {"text": texts[index]}
        out.append(item)
    return out


async def rerank(gateway: Gateway, request: Request) -> Response:
    body = await request.json_object()
    governance = gateway.governance
    principal = governance.authenticate(request)  # a caller without a key learns nothing more
    parsed = validate_rerank(body)
    texts = [d if isinstance(d, str) else d.text for d in parsed.documents]
    top_n = min(parsed.top_n or len(texts), len(texts))
    ticket = await governance.admit(request, body, endpoint="rerank", principal=principal)
    stats = RouteStats()
    upstream: Body = {"model": parsed.model, "query": parsed.query, "documents": texts}
    upstream["top_n"] = len(texts)  # every score comes back; the gateway cuts to top_n

    async def attempt(deployment: Deployment) -> Body:
        sent = upstream
        vault = pii_vault(gateway, deployment, ticket)
        if vault is not None:
            sent = await redacted_for(ticket, upstream, vault, change_rerank)
        provider: Any = deployment.provider
        result: Body = await provider.rerank(sent)
        return {
            "id": str(result.get("id") or new_id("rerank-")),
            "model": parsed.model,
            "results": _results(result, texts, top_n, parsed.return_documents),
            "usage": _usage(result, upstream),
        }

    async def call() -> Routed[Body]:
        return await gateway.router.run(
            parsed.model,
            attempt,
            stats=stats,
            supports=lambda d: d.provider.capabilities.rerank,
            operation="rerank",
        )

    return await settled_json(governance, request, ticket, stats, call, lambda answer: answer)


def _usage(result: Body, upstream: Body) -> Body:
    """Tokens read: the upstream's count, else ours (the query with each document)."""
    usage = result.get("usage")
    usage = usage if isinstance(usage, dict) else {}
    tokens = usage.get("prompt_tokens") or usage.get("total_tokens")
    if not isinstance(tokens, int):
        tokens = count_prompt(upstream)
    return {"prompt_tokens": tokens, "total_tokens": tokens}
