"""The RAG section of the configuration: vector stores and collection defaults."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from stackyard.config.strict import Strict as _Strict


class VectorStoreConfig(_Strict):
    kind: Literal["embedded", "pgvector"] = Field(
        default="embedded",
        description="embedded: SQLite plus in-process HNSW and BM25 indexes; pgvector: "
        "PostgreSQL with pgvector 0.8 or later (needs url).",
    )
    path: str | None = Field(
        default=None,
        description="embedded: the SQLite file (default: rag.db next to the config).",
    )
    url: str | None = Field(default=None, description="pgvector: the PostgreSQL URL.")

    @model_validator(mode="after")
    def _url(self) -> VectorStoreConfig:
        if self.kind == "pgvector" and not self.url:
            raise ValueError("a pgvector store needs url")
        return self


class RagConfig(_Strict):
    stores: dict[str, VectorStoreConfig] = Field(
        default_factory=lambda: {"default": VectorStoreConfig()},
        description="Vector stores by name; a collection names one (default: 'default').",
    )
    embedding_model: str | None = Field(
        default=None,
        description="The embedding model of new collections that name none (default: the "
        "first model that does embeddings).",
    )
    top_k: Annotated[int, Field(ge=1, le=50)] = Field(
        default=5, description="Passages a RAG chat request gets when it says nothing."
    )
    context_template: str | None = Field(
        default=None,
        description="The system message that carries the passages in a RAG chat request; "
        "{passages} marks where they go (default: answer from the passages, cite them as [n]).",
    )
    ray_min_files: Annotated[int, Field(ge=0)] = Field(
        default=500,
        description="With ray_address set: a sync reads, chunks and embeds on the cluster when "
        "at least this many files changed (fewer: in process).",
    )
    ray_embed_actors: Annotated[int, Field(ge=1, le=1024)] = Field(
        default=2,
        description="With ray_address set: Ray actors that each hold the embedding "
        "model during a sync.",
    )
