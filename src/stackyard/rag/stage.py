"""RAG as a stage: ``"rag": {"collections": [...]}`` retrieves passages for the last user
message, gives them to the model (through the door: a system message, or Messages' ``system``)
and returns them as ``citations``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from stackyard.errors import APIError
from stackyard.gateway.pipeline.stage import Stage

if TYPE_CHECKING:
    from stackyard.gateway.pipeline.exchange import Exchange
    from stackyard.gateway.service import Gateway


class RagStage(Stage):
    name = "rag"

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    async def before(self, ex: Exchange) -> None:
        spec = ex.options.get("rag")
        if spec is None:
            return
        rag = self.gateway.rag
        if rag is None:
            raise APIError(
                400,
                "This gateway does not serve RAG (install the 'rag' extra).",
                param="rag",
                code="rag_unavailable",
            )
        from stackyard.rag.augment import retrieve

        ticket = ex.admitted
        question = ex.door.question(ex.body)
        context, retrieval = await retrieve(
            rag, question, spec, ticket.principal, self.gateway.prompts
        )
        ex.body = ex.door.with_context(ex.body, context)
        ex.citations = retrieval.citations
        ex.headers.append((b"x-stackyard-rag-citations", str(len(retrieval.citations)).encode()))
        if ticket.trace is not None:
            span = ticket.trace.child("rag.retrieve", retrieval.started_ns)
            span.attributes["stackyard.rag.collections"] = retrieval.collections
            span.attributes["stackyard.rag.passages"] = len(retrieval.citations)
            span.attributes["stackyard.rag.sources"] = [c["source"] for c in retrieval.citations]
            if retrieval.prompt is not None:
                span.attributes["stackyard.rag.prompt"] = retrieval.prompt
