"""OpenAI's API, and anything that speaks it (vLLM, TGI, Ollama, LM Studio, llama.cpp).

Bodies pass through untouched but for ``model``: fields this gateway does not know reach the
upstream as the client sent them. With ``options: {api: responses}`` a deployment's chat calls
go to the upstream's ``/v1/responses`` instead (for models OpenAI serves there only), translated
by :mod:`stackyard.gateway.translate.responses_backend`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

import orjson

from stackyard.config.schema import ModelEntry
from stackyard.gateway.providers import transport
from stackyard.gateway.providers.base import Body, Capabilities, UpstreamError
from stackyard.gateway.providers.http import HttpClient
from stackyard.gateway.translate import responses_backend

OPENAI_API_BASE = "https://api.openai.com/v1"


class OpenAIProvider:
    """OpenAI itself: a key is expected and every capability is there."""

    capabilities = Capabilities(
        embeddings=True, stream_usage=True, base64_embeddings=True, external=True
    )
    label = "openai"

    def __init__(self, entry: ModelEntry, http: HttpClient) -> None:
        self.model = entry.upstream_model
        self.api_base = entry.api_base or OPENAI_API_BASE
        self._http = http
        headers = {"content-type": "application/json", "accept": "application/json"}
        if entry.api_key:
            headers["authorization"] = f"Bearer {entry.api_key}"
        headers.update({k.lower(): v for k, v in entry.headers.items()})
        self._headers = headers
        self._stream_headers = {**headers, "accept": "text/event-stream"}
        self._chat_url = f"{self.api_base}/chat/completions"
        self._embeddings_url = f"{self.api_base}/embeddings"
        self._rerank_url = f"{self.api_base}/rerank"
        self._name = f"{self.label} upstream at {self.api_base}"
        api = entry.options.get("api", "chat")
        if api not in ("chat", "responses"):
            raise ValueError(f"option 'api' must be 'chat' or 'responses', not {api!r}")
        self._responses_url = f"{self.api_base}/responses" if api == "responses" else None

    def _payload(self, body: Body) -> bytes:
        return orjson.dumps({**body, "model": self.model})

    async def _post_json(self, url: str, body: Body) -> Body:
        return await transport.post_json(
            self._http, url, self._payload(body), self._headers, upstream=self._name
        )

    async def chat(self, body: Body) -> Body:
        if self._responses_url is not None:
            payload = orjson.dumps(responses_backend.request(body, model=self.model))
            response = await transport.post_json(
                self._http, self._responses_url, payload, self._headers, upstream=self._name
            )
            return responses_backend.completion(response, upstream=self._name)
        data = await self._post_json(self._chat_url, body)
        if not isinstance(data.get("choices"), list):
            raise UpstreamError("invalid_response", f"{self._name} sent no 'choices'")
        return data

    async def embeddings(self, body: Body) -> Body:
        data = await self._post_json(self._embeddings_url, body)
        if not isinstance(data.get("data"), list):
            raise UpstreamError("invalid_response", f"{self._name} sent no 'data'")
        return data

    async def rerank(self, body: Body) -> Body:
        data = await self._post_json(self._rerank_url, body)
        if not isinstance(data.get("results"), list):
            raise UpstreamError("invalid_response", f"{self._name} sent no 'results'")
        return data

    async def chat_stream(self, body: Body) -> AsyncGenerator[Body, None]:
        if self._responses_url is not None:
            async for chunk in self._responses_stream(body):
                yield chunk
            return
        events = transport.post_events(
            self._http,
            self._chat_url,
            self._payload(body),
            self._stream_headers,
            upstream=self._name,
        )
        done = False
        try:
            async for event in events:
                if done:
                    continue  # read to the end so that the connection is reused
                if event.data == "[DONE]":
                    done = True
                else:
                    yield _chunk(event.data, self._name)
        finally:
            await events.aclose()
        if not done:
            raise UpstreamError("connection", f"{self._name} ended the stream without [DONE]")

    async def _responses_stream(self, body: Body) -> AsyncGenerator[Body, None]:
        assert self._responses_url is not None
        translator = responses_backend.StreamTranslator(
            include_usage=bool((body.get("stream_options") or {}).get("include_usage")),
            upstream=self._name,
        )
        payload = responses_backend.request({**body, "stream": True}, model=self.model)
        events = transport.post_events(
            self._http,
            self._responses_url,
            orjson.dumps(payload),
            self._stream_headers,
            upstream=self._name,
        )
        try:
            async for event in events:
                if translator.finished:
                    continue  # read to the end so that the connection is reused
                for chunk in translator.feed(transport.event_object(event.data, self._name)):
                    yield chunk
        finally:
            await events.aclose()
        if not translator.finished:
            raise UpstreamError("connection", f"{self._name} ended the stream before it completed")

    async def start(self) -> None:
        return None

    def ready(self) -> bool:
        return True

    async def aclose(self) -> None:
        return None


class OpenAICompatibleProvider(OpenAIProvider):
    """A self-hosted server speaking OpenAI's API: ``api_base`` required, key optional.

    ``options``: ``stream_usage`` (bool, default true), ``base64_embeddings`` (bool,
    default false: the gateway asks for floats and encodes base64 itself) and ``rerank``
    (bool, default false: the model is a reranker behind ``{api_base}/rerank``, and does
    neither chat nor embeddings).
    """

    label = "openai-compatible"

    def __init__(self, entry: ModelEntry, http: HttpClient) -> None:
        if not entry.api_base:
            raise ValueError("provider 'openai-compatible' needs 'api_base'")
        super().__init__(entry, http)
        external = entry.external if entry.external is not None else False
        rerank = bool(entry.options.get("rerank", False))
        self.capabilities = Capabilities(
            chat=not rerank,
            streaming=not rerank,
            embeddings=not rerank,
            rerank=rerank,
            stream_usage=bool(entry.options.get("stream_usage", True)),
            base64_embeddings=bool(entry.options.get("base64_embeddings", False)),
            external=external,
        )


def _chunk(data: str, upstream: str) -> Body:
    chunk = transport.event_object(data, upstream)
    error = chunk.get("error")
    if error is not None:
        message = error.get("message") if isinstance(error, dict) else str(error)
        raise UpstreamError("server", f"{upstream} failed mid-stream: {message}")
    return chunk
