"""Anthropic's Messages API.

Serves OpenAI-format chat requests by translation (``translate.anthropic_backend``), and
Anthropic-format requests from the ``/v1/messages`` door untouched (``messages`` and
``messages_stream``). ``options``: ``anthropic_version`` (default ``2023-06-01``),
``default_max_tokens`` (default 4096; Anthropic requires ``max_tokens``) and ``beta``
(the ``anthropic-beta`` header).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

import orjson

from stackyard.config.schema import ModelEntry
from stackyard.gateway.providers import transport
from stackyard.gateway.providers.base import Body, Capabilities, UpstreamError
from stackyard.gateway.providers.http import HttpClient
from stackyard.gateway.translate import anthropic_backend

ANTHROPIC_API_BASE = "https://api.anthropic.com/v1"
ANTHROPIC_VERSION = "2023-06-01"

#: One event of Anthropic's stream: its ``event:`` name and its decoded data.
Event = tuple[str | None, Body]


class AnthropicProvider:
    capabilities = Capabilities(
        embeddings=False, stream_usage=True, external=True, anthropic_messages=True
    )

    def __init__(self, entry: ModelEntry, http: HttpClient) -> None:
        self.model = entry.upstream_model
        self.api_base = entry.api_base or ANTHROPIC_API_BASE
        self._http = http
        options = entry.options
        self.default_max_tokens = int(str(options.get("default_max_tokens", 4096)))
        headers = {
            "content-type": "application/json",
            "accept": "application/json",
            "anthropic-version": str(options.get("anthropic_version", ANTHROPIC_VERSION)),
        }
        if entry.api_key:
            headers["x-api-key"] = entry.api_key
        if options.get("beta"):
            headers["anthropic-beta"] = str(options["beta"])
        headers.update({k.lower(): v for k, v in entry.headers.items()})
        self._headers = headers
        self._stream_headers = {**headers, "accept": "text/event-stream"}
        self._url = f"{self.api_base}/messages"
        self._count_url = f"{self.api_base}/messages/count_tokens"
        self._name = f"anthropic upstream at {self.api_base}"

    # -- OpenAI format in and out -----------------------------------------------------------

    def _translate(self, body: Body) -> Body:
        return anthropic_backend.request(
            body, model=self.model, default_max_tokens=self.default_max_tokens
        )

    async def chat(self, body: Body) -> Body:
        message = await self._post(self._url, self._translate(body))
        return anthropic_backend.completion(message, json_mode=_json_mode(body))

    async def chat_stream(self, body: Body) -> AsyncGenerator[Body, None]:
        translator = anthropic_backend.StreamTranslator(
            json_mode=_json_mode(body),
            include_usage=bool((body.get("stream_options") or {}).get("include_usage")),
        )
        events = self._stream(self._translate({**body, "stream": True}))
        try:
            async for event, data in events:
                for chunk in translator.feed(event, data):
                    yield chunk
        finally:
            await events.aclose()
        if not translator.finished:
            raise UpstreamError("connection", f"{self._name} ended the stream before message_stop")

    async def embeddings(self, body: Body) -> Body:
        raise UpstreamError("client", "Anthropic has no embeddings API", status=400)

    # -- Anthropic format in and out (the /v1/messages door) --------------------------------

    async def messages(self, body: Body) -> Body:
        return await self._post(self._url, {**body, "model": self.model})

    def messages_stream(self, body: Body) -> AsyncGenerator[Event, None]:
        return self._stream({**body, "model": self.model, "stream": True})

    async def count_tokens(self, body: Body) -> Body:
        payload = {k: v for k, v in body.items() if k not in ("max_tokens", "stream")}
        return await self._post(self._count_url, {**payload, "model": self.model})

    # -- transport --------------------------------------------------------------------------

    async def _post(self, url: str, payload: Body) -> Body:
        return await transport.post_json(
            self._http, url, orjson.dumps(payload), self._headers, upstream=self._name
        )

    async def _stream(self, payload: Body) -> AsyncGenerator[Event, None]:
        events = transport.post_events(
            self._http, self._url, orjson.dumps(payload), self._stream_headers, upstream=self._name
        )
        try:
            async for event in events:
                yield event.event, transport.event_object(event.data, self._name)
        finally:
            await events.aclose()

    async def start(self) -> None:
        return None

    def ready(self) -> bool:
        return True

    async def aclose(self) -> None:
        return None


def _json_mode(body: Body) -> bool:
    return (body.get("response_format") or {}).get("type") in ("json_schema", "json_object")
