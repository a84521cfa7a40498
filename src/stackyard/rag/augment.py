"""RAG in a chat request: ``"rag": {"collections": [...], "top_k": 5}`` retrieves passages for
the last user message, gives them to the model in a system message, and returns them as
``citations`` (numbered as the model was told to cite them).

The names are the caller's team's collections; the master key's are its own, or a team's it
names with ``"team_id"`` (``rag/namespaces.py``). Found in the snapshot: no database I/O."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from stackyard.auth.principal import Principal
from stackyard.errors import APIError, describe_validation, invalid_request
from stackyard.prompts.model import REFERENCE
from stackyard.prompts.snapshot import PromptSnapshot
from stackyard.prompts.template import RenderError, check_variables, render_messages, render_text
from stackyard.rag.collections import RagError
from stackyard.rag.namespaces import namespace, not_found
from stackyard.rag.rerank import RerankSpec
from stackyard.rag.retrieve import QuerySpec, Result
from stackyard.rag.service import RAG
from stackyard.rag.stores.base import Where

DEFAULT_TEMPLATE = (
    "Answer the question using the numbered passages below. Cite each passage you use by its "
    "number in square brackets, like [1]. If the passages do not hold the answer, say so.\n\n"
    "{passages}"
)


class RagSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    collections: Annotated[list[str], Field(min_length=1, max_length=8)]
    team_id: str | None = Field(
        default=None,
        description="The master key: the team whose collections these are (absent: the "
        "master key's own). A key may only name its own team.",
    )
    top_k: Annotated[int, Field(ge=1, le=50)] | None = None
    mode: Literal["hybrid", "dense", "keyword"] = "hybrid"
    filter: Where | None = None
    min_score: float | None = Field(
        default=None,
        description="Drop passages scoring below this (the reranker's scale when one ran, "
        "else the mode's own).",
    )
    rerank: RerankSpec | Literal[False] | None = Field(
        default=None,
        description="Rerank with a model: {model, candidates}; false for none; absent for "
        "each collection's setting.",
    )
    prompt: str | None = Field(
        default=None,
        description="A registry prompt that carries the passages instead of the default "
        "system message: NAME, NAME:LABEL or NAME@VERSION. It gets the variables it declares "
        "of 'passages' and 'question'.",
    )


@dataclass(frozen=True, slots=True)
class Retrieval:
    citations: list[dict[str, Any]]
    started_ns: int
    collections: list[str]
    prompt: str | None = None  # NAME@VERSION of a registry prompt used


def last_user_text(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(
                    part.get("text", "")
                    for part in content
                    if isinstance(part, dict) and part.get("type") == "text"
                )
    return ""


async def retrieve(
    rag: RAG,
    question: str,
    raw: object,
    principal: Principal,
    prompts: PromptSnapshot | None = None,
) -> tuple[list[dict[str, Any]], Retrieval]:
    """The passages for ``question`` from the collections ``raw`` (a request's ``rag`` field)
    names, as the chat messages (system first) that give them to the model, and what was
    retrieved."""
    started = time.time_ns()
    try:
        spec = RagSpec.model_validate(raw)
    except ValidationError as exc:
        message, where = describe_validation(exc)
        raise invalid_request(f"rag.{message}", param=f"rag.{where}", code="invalid_rag") from None
    if not question.strip():
        raise invalid_request(
            "rag needs a user message to search with", param="messages", code="invalid_rag"
        )
    top_k = spec.top_k or rag.config.top_k
    try:
        space = namespace(principal, spec.team_id)
    except RagError as exc:
        raise APIError(exc.status, str(exc), param="rag.team_id", code=exc.code) from None
    found: list[tuple[str, Result]] = []
    for name in dict.fromkeys(spec.collections):
        collection = rag.collections.find(name, space)
        if collection is None:
            missing = not_found(rag.collections, principal, name, space)
            raise APIError(404, str(missing), param="rag.collections", code=missing.code)
        query = QuerySpec(
            query=question[:20_000],
            top_k=top_k,
            mode=spec.mode,
            filter=spec.filter,
            rerank=spec.rerank,
        )
        try:
            results = await rag.query(collection, query)
        except RagError as exc:
            raise APIError(exc.status, str(exc), param="rag", code=exc.code) from None
        found.extend((name, r) for r in results)
    found.sort(key=lambda item: -item[1].rank_score)
    if spec.min_score is not None:
        found = [f for f in found if f[1].rank_score >= spec.min_score]
    found = found[:top_k]
    citations = [
        {"index": i, **result.public(name)} for i, (name, result) in enumerate(found, start=1)
    ]
    passages = (
        "\n\n".join(f"[{c['index']}] (source: {c['source']})\n{c['text']}" for c in citations)
        or "(no passages were found)"
    )
    used = None
    if spec.prompt is not None and prompts is not None:
        context, used = _from_registry(prompts, spec.prompt, passages, question)
    else:
        template = rag.config.context_template or DEFAULT_TEMPLATE
        context = [{"role": "system", "content": template.replace("{passages}", passages)}]
    return context, Retrieval(citations, started, list(spec.collections), used)


def _from_registry(
    prompts: PromptSnapshot, reference: str, passages: str, question: str
) -> tuple[list[dict[str, Any]], str]:
    """The messages of a registry prompt rendered with the passages, and its NAME@VERSION."""
    match = REFERENCE.match(reference)
    if match is None:
        raise invalid_request(
            "rag.prompt must be NAME, NAME:LABEL or NAME@VERSION",
            param="rag.prompt",
            code="invalid_rag",
        )
    version = match["version"]
    number, content = prompts.resolve(
        match["name"],
        label=match["label"],
        version=int(version) if version and version != "latest" else None,
    )
    declared = content.get("variables") or {}
    given = {"passages": passages, "question": question}
    engine = content.get("engine", "mustache")
    try:
        values = check_variables(declared, {k: v for k, v in given.items() if k in declared})
        if content["type"] == "text":
            rendered = [
                {"role": "system", "content": render_text(content["template"], values, engine)}
            ]
        else:
            rendered = render_messages(content["messages"], values, engine)
    except RenderError as exc:
        raise invalid_request(
            f"rag.prompt {match['name']} version {number}: {exc}",
            param="rag.prompt",
            code="invalid_rag",
        ) from None
    return rendered, f"{match['name']}@{number}"
