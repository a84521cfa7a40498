"""``POST /v1/responses``: OpenAI's Responses API as a door onto the pipeline, for every model.

The door makes a chat request of a Responses request once the key is checked (with the
conversation a ``previous_response_id`` continues), so every stage runs on it as on
``/v1/chat/completions``, and every provider serves it through its chat call. The answer (or
each chunk of a stream) is made a ``Response`` (or its events) on the way out, and stored when
``store`` is on (:mod:`stackyard.gateway.stored_responses`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from stackyard.errors import APIError
from stackyard.gateway.doors.chat import WANTS_USAGE, ChatDoor
from stackyard.gateway.pipeline.exchange import Body, Event, Exchange
from stackyard.gateway.stored_responses import ResponseStore, Stored, owner_of
from stackyard.gateway.translate import responses as wire
from stackyard.gateway.translate import responses_answer as answer_wire
from stackyard.gateway.wire import validate_chat
from stackyard.server.http import Response

#: ``ex.state`` keys.
PARSED = "responses.parsed"
ENVELOPE = "responses.envelope"
HISTORY = "responses.history"
ENCODER = "responses.encoder"


class ResponsesDoor(ChatDoor):
    endpoint = "responses"
    operation = "responses"

    def __init__(self, store: ResponseStore, may_store: Callable[[str | None], bool]) -> None:
        self.store = store
        #: Whether a team's requests may be stored (its traces keep bodies).
        self.may_store = may_store

    async def parse(self, ex: Exchange) -> None:
        parsed = wire.check(ex.body, prompt=ex.options.get("prompt") is not None)
        history: list[Body] = []
        if parsed.previous is not None:
            previous = await self.store.get(parsed.previous, ex.principal)
            if previous is None:
                raise APIError(
                    404,
                    f"Previous response with id '{parsed.previous}' not found.",
                    type="invalid_request_error",
                    param="previous_response_id",
                    code="previous_response_not_found",
                )
            history = previous.messages
        store = parsed.store
        if store and not self.may_store(ex.principal.team_id):
            if ex.body.get("store") is True:
                raise wire.unsupported(
                    "store",
                    "this team's requests are not stored (observability.bodies is off or "
                    "metadata for it); send store: false",
                )
            store = False
        parsed.store = store
        ex.state[PARSED] = parsed
        ex.state[HISTORY] = history
        ex.state[ENVELOPE] = answer_wire.envelope(ex.body, wire.new_id("resp"), time.time(), store)
        prompt = ex.options.get("prompt")
        if isinstance(prompt, dict) and "id" in prompt and "name" not in prompt:
            ex.options["prompt"] = _registry_prompt(prompt)
        ex.body = wire.chat_request(parsed, history)

    def refuse(self, error: APIError, ex: Exchange | None = None) -> Response:
        """An error naming a chat message names what the client sent instead."""
        parsed: wire.Parsed | None = ex.state.get(PARSED) if ex is not None else None
        if ex is None or parsed is None or "messages[" not in (error.param or ""):
            raise error
        count = len(ex.body.get("messages") or ())
        history = len(ex.state[HISTORY])

        def path(text: str) -> str:
            return wire.request_path(text, count, parsed, history)

        error.param = path(error.param or "")
        error.message = path(error.message)
        error.args = (error.message,)
        raise error

    def validate(self, ex: Exchange) -> bool:
        parsed = validate_chat(ex.body)
        ex.state[WANTS_USAGE] = True  # response.completed carries the usage
        return bool(parsed.stream)

    # -- the answer ---------------------------------------------------------------------------

    def render(self, ex: Exchange, answer: Body, headers: list[tuple[bytes, bytes]]) -> Response:
        citations = answer.pop("citations", None)
        response = answer_wire.response(ex.state[ENVELOPE], answer)
        if citations is not None:
            response["citations"] = citations
        self._keep(ex, response)
        return Response.json(response, headers=headers)

    def _keep(self, ex: Exchange, response: Body) -> None:
        parsed: wire.Parsed = ex.state[PARSED]
        if not parsed.store:
            return
        self.store.put(
            Stored(
                id=response["id"],
                owner=owner_of(ex.principal),
                team_id=ex.principal.team_id,
                created_at=float(response["created_at"]),
                model=str(response["model"]),
                response=response,
                items=parsed.items,
                messages=wire.history_of(
                    [*ex.state[HISTORY], *parsed.messages], response["output"]
                ),
            )
        )

    # -- a stream -----------------------------------------------------------------------------

    def _encoder(self, ex: Exchange) -> tuple[answer_wire.EventEncoder, list[tuple[str, Body]]]:
        encoder: answer_wire.EventEncoder | None = ex.state.get(ENCODER)
        if encoder is not None:
            return encoder, []
        encoder = ex.state[ENCODER] = answer_wire.EventEncoder(dict(ex.state[ENVELOPE]))
        return encoder, encoder.start()

    def first(self, ex: Exchange, event: Event) -> Event:
        if ex.citations is not None:
            ex.state[ENVELOPE]["citations"] = ex.citations
        return event

    def encode(self, ex: Exchange, event: Event) -> bytes | None:
        encoder, events = self._encoder(ex)
        events += encoder.feed(event)
        return answer_wire.sse(events) if events else None

    def end(self, ex: Exchange) -> bytes:
        encoder, events = self._encoder(ex)
        events += encoder.finish()
        self._keep(ex, encoder.final())
        return answer_wire.sse(events)

    def error_event(
        self, ex: Exchange, status: int, code: str, message: str, kind: str | None
    ) -> bytes:
        encoder, events = self._encoder(ex)
        return answer_wire.sse([*events, encoder.error(code, message)])


def _registry_prompt(prompt: dict[str, Any]) -> dict[str, Any]:
    """OpenAI's reusable-prompt reference (``{"id", "version", "variables"}``) as a registry
    prompt: the id is the prompt's name, the version its number; a variable given as an
    ``input_text`` part is its text."""
    spec: dict[str, Any] = {"name": prompt["id"]}
    version = prompt.get("version")
    if isinstance(version, str) and version.isdigit():
        spec["version"] = int(version)
    elif version is not None:
        spec["version"] = version  # the registry names the problem
    variables = prompt.get("variables")
    if isinstance(variables, dict):
        spec["variables"] = {
            key: value.get("text") if isinstance(value, dict) else value
            for key, value in variables.items()
        }
    return spec
