"""OpenAI's API, and anything that speaks it (vLLM, TGI, Ollama, LM Studio, llama.cpp).

Bodies pass through untouched but for ``model``: fields this gateway does not know reach the
upstream as the client sent them.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import orjson

from stackyard.config.schema import ModelEntry
from stackyard.gateway.providers import errors
from stackyard.gateway.providers.base import Body, Capabilities, UpstreamError
from stackyard.gateway.providers.http import HttpClient
from stackyard.gateway.providers.sse import SSEDecoder

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
        self._name = f"{self.label} upstream at {self.api_base}"

    def _payload(self, body: Body) -> bytes:
        return orjson.dumps({**body, "model": self.model})

    async def _post_json(self, url: str, body: Body) -> Body:
        try:
            async with self._http.session.post(
                url, data=self._payload(body), headers=self._headers
            ) as response:
                raw = await response.read()
                if response.status >= 400:
                    raise errors.from_response(
                        response.status, response.headers, raw, upstream=self._name
                    )
            data = orjson.loads(raw)
        except Exception as exc:
            raise errors.from_exception(exc, upstream=self._name) from exc
        if not isinstance(data, dict):
            raise UpstreamError("invalid_response", f"{self._name} sent a non-object JSON body")
        return data

    async def chat(self, body: Body) -> Body:
        data = await self._post_json(self._chat_url, body)
        if not isinstance(data.get("choices"), list):
            raise UpstreamError("invalid_response", f"{self._name} sent no 'choices'")
        return data

    async def embeddings(self, body: Body) -> Body:
        data = await self._post_json(self._embeddings_url, body)
        if not isinstance(data.get("data"), list):
            raise UpstreamError("invalid_response", f"{self._name} sent no 'data'")
        return data

    async def chat_stream(self, body: Body) -> AsyncGenerator[Body, None]:
        try:
            response = await self._http.session.post(
                self._chat_url, data=self._payload(body), headers=self._stream_headers
            )
        except Exception as exc:
            raise errors.from_exception(exc, upstream=self._name) from exc
        try:
            if response.status >= 400:
                raw = await response.read()
                raise errors.from_response(
                    response.status, response.headers, raw, upstream=self._name
                )
            content_type = response.headers.get("content-type", "")
            if "text/event-stream" not in content_type:
                # Some servers answer a stream request with one JSON body (an error, usually).
                raw = await response.read()
                raise _unexpected_body(raw, content_type, self._name)
            decoder = SSEDecoder()
            done = False
            async for piece in response.content.iter_any():
                for event in decoder.feed(piece):
                    if done:
                        continue  # read to the end so that the connection is reused
                    if event.data == "[DONE]":
                        done = True
                    else:
                        yield _chunk(event.data, self._name)
            for event in decoder.flush():
                if event.data == "[DONE]":
                    done = True
                elif not done:
                    yield _chunk(event.data, self._name)
            if not done:
                raise UpstreamError("connection", f"{self._name} ended the stream without [DONE]")
        except UpstreamError:
            raise
        except Exception as exc:
            raise errors.from_exception(exc, upstream=self._name) from exc
        finally:
            response.release()

    async def start(self) -> None:
        return None

    def ready(self) -> bool:
        return True

    async def aclose(self) -> None:
        return None


class OpenAICompatibleProvider(OpenAIProvider):
    """A self-hosted server speaking OpenAI's API: ``api_base`` required, key optional.

    ``options``: ``stream_usage`` (bool, default true) and ``base64_embeddings`` (bool,
    default false: the gateway asks for floats and encodes base64 itself).
    """

    label = "openai-compatible"

    def __init__(self, entry: ModelEntry, http: HttpClient) -> None:
        if not entry.api_base:
            raise ValueError("provider 'openai-compatible' needs 'api_base'")
        super().__init__(entry, http)
        external = entry.external if entry.external is not None else False
        self.capabilities = Capabilities(
            embeddings=True,
            stream_usage=bool(entry.options.get("stream_usage", True)),
            base64_embeddings=bool(entry.options.get("base64_embeddings", False)),
            external=external,
        )


def _chunk(data: str, upstream: str) -> Body:
    try:
        chunk: Any = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise UpstreamError(
            "invalid_response", f"{upstream} sent an invalid stream event"
        ) from None
    if not isinstance(chunk, dict):
        raise UpstreamError("invalid_response", f"{upstream} sent a non-object stream event")
    error = chunk.get("error")
    if error is not None:
        message = error.get("message") if isinstance(error, dict) else str(error)
        raise UpstreamError("server", f"{upstream} failed mid-stream: {message}")
    return chunk


def _unexpected_body(raw: bytes, content_type: str, upstream: str) -> UpstreamError:
    message, _ = errors.error_fields(raw)
    if message:
        return UpstreamError("server", f"{upstream}: {message}")
    return UpstreamError(
        "invalid_response", f"{upstream} answered a stream request with {content_type or 'no'}"
    )
