"""What a provider is: a small Protocol, its capabilities, and the errors it raises.

A provider adapts one upstream API (OpenAI, Anthropic, a self-hosted server, an in-process
model) to OpenAI's chat-completions and embeddings shapes. One instance serves one deployment
(one entry of the config's ``models`` list). Request and response bodies are plain dicts in
OpenAI's wire format; streams are async iterators of chunk dicts.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from stackyard.config.schema import ModelEntry
from stackyard.gateway.providers.http import HttpClient

Body = dict[str, Any]

ErrorKind = Literal[
    "rate_limited",  # 429: retry later, elsewhere first
    "server",  # 5xx or an error event in a stream: retryable
    "timeout",  # no answer in time: retryable
    "connection",  # refused, reset, DNS: retryable
    "invalid_response",  # not the wire format we expect: retryable elsewhere
    "deployment",  # 401/403/404 from the upstream: this deployment is misconfigured
    "client",  # 400/413/422: the request itself is wrong; returned to the client as is
]

RETRYABLE: frozenset[ErrorKind] = frozenset(
    {"rate_limited", "server", "timeout", "connection", "invalid_response"}
)


class UpstreamError(Exception):
    """An upstream call failed. ``kind`` decides what the router does next."""

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        error_type: str | None = None,
        param: str | None = None,
        code: str | None = None,
        client_status: int | None = None,
        cooldown: bool = True,
    ) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind
        #: The status the client gets when this is the request's last error (default: by kind).
        self.client_status = client_status
        #: Whether this failure counts towards the deployment's cooldown (a momentarily full
        #: in-process queue does not: the deployment is healthy, just busy).
        self.cooldown = cooldown
        self.message = message
        self.status = status
        self.retry_after = retry_after
        self.error_type = error_type
        self.param = param
        self.code = code

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE

    def __repr__(self) -> str:
        return f"UpstreamError({self.kind!r}, {self.message!r}, status={self.status})"


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a provider can do; the router and the handlers read these instead of names."""

    chat: bool = True
    streaming: bool = True
    embeddings: bool = False
    #: Honours ``stream_options.include_usage`` (the gateway then always asks, for accounting).
    stream_usage: bool = False
    #: Answers ``encoding_format: "base64"`` itself (otherwise the gateway encodes).
    base64_embeddings: bool = False
    #: Requests leave the organisation (for guardrail policies); a config entry may override.
    external: bool = True
    #: Speaks Anthropic's Messages API natively (``messages``, ``messages_stream``,
    #: ``count_tokens``): the ``/v1/messages`` door passes requests through untranslated.
    anthropic_messages: bool = False
    #: Scores documents against a query (``rerank``: the ``/rerank`` API of vLLM, Infinity,
    #: Jina and Cohere).
    rerank: bool = False


class Provider(Protocol):
    """One deployment's upstream. Implementations live one per module in this package."""

    capabilities: Capabilities

    async def chat(self, body: Body) -> Body:
        """A non-streamed chat completion. Raises :class:`UpstreamError`."""
        ...

    def chat_stream(self, body: Body) -> AsyncGenerator[Body, None]:
        """Chat completion chunks as they arrive. Raises :class:`UpstreamError`, also mid-way."""
        ...

    async def embeddings(self, body: Body) -> Body:
        """An embeddings response. Raises :class:`UpstreamError`."""
        ...

    async def start(self) -> None:
        """Called once the server has started (an in-process model begins loading here)."""
        ...

    def ready(self) -> bool:
        """Whether requests can be served now (``GET /ready`` reports this)."""
        ...

    async def aclose(self) -> None:
        """Release resources (the shared HTTP client is closed by its owner)."""
        ...


class MessagesProvider(Provider, Protocol):
    """A provider whose ``capabilities.anthropic_messages`` is set: it takes Anthropic
    Messages bodies as they are."""

    async def messages(self, body: Body) -> Body: ...

    def messages_stream(self, body: Body) -> AsyncGenerator[tuple[str | None, Body], None]: ...

    async def count_tokens(self, body: Body) -> Body: ...


class RerankProvider(Provider, Protocol):
    """A provider whose ``capabilities.rerank`` is set."""

    async def rerank(self, body: Body) -> Body:
        """``{model, query, documents, top_n}`` in, ``{results: [{index, relevance_score}]}``
        out (sorted by score). Raises :class:`UpstreamError`."""
        ...


class ProviderFactory(Protocol):
    def __call__(self, entry: ModelEntry, http: HttpClient) -> Provider: ...
