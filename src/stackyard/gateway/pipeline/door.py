"""What a door is: one wire format (chat completions, Anthropic Messages, embeddings) onto the
pipeline. A door parses and validates its requests, shows the stages its shape (where the
texts are, where a system prompt goes), calls a deployment in that shape, and encodes the
answers, stream events and errors the way its official SDK expects them.

Every door implements the abstract methods (every door takes the secrets and PII rails). The
others belong to a stage (:data:`NEEDS`) or to streaming (:data:`STREAMING`): a door lists in
``stages`` only the stages whose methods it implements, and sets ``streams`` only if it
implements streaming; ``tests/gateway/test_pipeline.py`` checks both."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

from stackyard.gateway.pipeline.exchange import Body, Event, Events, Exchange

if TYPE_CHECKING:
    from stackyard.cache.entry import Entry
    from stackyard.errors import APIError
    from stackyard.gateway.accounting import Settlement
    from stackyard.gateway.deployment import Deployment
    from stackyard.guardrails.output_json import Expected
    from stackyard.guardrails.secrets import Secret
    from stackyard.guardrails.unscannable import Part
    from stackyard.guardrails.vault import Vault
    from stackyard.observability.capture import ChunkCapture, EventCapture
    from stackyard.server.http import Response

Change = Callable[[str], str]
Texts = list[tuple[str, str]]
#: A text of an answer, and how to put a fixed one in its place.
JsonTexts = list[tuple[str, Callable[[str], None]]]

#: The methods a door implements to take a stage.
NEEDS: dict[str, tuple[str, ...]] = {
    "prompt": ("with_prompt",),
    "rag": ("question", "with_context"),
    "injection": ("texts",),
    "topics": ("texts",),
    "cache": ("cache_view", "replay", "replay_events"),
    "json_output": ("wants_json", "json_texts", "reask", "add_usage"),
}
#: The methods a door implements to stream.
STREAMING = (
    "call_stream",
    "restore_events",
    "mask_events",
    "account",
    "terminal",
    "encode",
    "error_event",
)


class Door(ABC):
    #: The endpoint, as admission, spend rows and traces name it.
    endpoint = "chat"
    #: What the router's errors call the operation.
    operation = "chat completions"
    #: The stages that apply to this door, by name (the others are "not applicable" here).
    stages: frozenset[str] = frozenset()
    #: Whether a request may ask for a stream.
    streams = True
    #: Our own fields in a request body, taken off before anything can send them upstream.
    options: tuple[str, ...] = ("prompt", "cache", "rag")

    def _lacks(self, what: str) -> NoReturn:
        raise TypeError(f"{type(self).__name__} does not {what}; see NEEDS and STREAMING")

    # -- the request --------------------------------------------------------------------------

    async def parse(self, ex: Exchange) -> None:
        """Once the key is checked, before any stage: put the request in the shape the stages
        read (``/v1/responses`` makes a chat request of it, with the conversation it
        continues). Nothing by default."""
        return

    @abstractmethod
    def validate(self, ex: Exchange) -> bool:
        """Check ``ex.body`` (raise an APIError naming the parameter); return whether it asks
        for a stream."""

    def refuse(self, error: APIError, ex: Exchange | None = None) -> Response:
        """An error in this door's shape (``ex``: the request, once parsed). By default it is
        raised, for the server's OpenAI error shape."""
        raise error

    @abstractmethod
    def scan_secrets(self, body: Body) -> list[Secret]: ...

    @abstractmethod
    def mask_secrets(self, body: Body) -> Body: ...

    @abstractmethod
    def change_texts(self, body: Body, change: Change) -> Body:
        """A copy of the request with ``change`` applied to every text that leaves."""

    @abstractmethod
    def unscanned(self, body: Body) -> list[Part]:
        """The parts of the request the text rails cannot read (images, audio, files, token
        ids), by where they are: :mod:`stackyard.guardrails.unscannable`."""

    def texts(self, body: Body, roles: tuple[str, ...] = ("user", "tool")) -> Texts:
        """The user's texts and tool results, by where they are (the injection and topics
        rails read these)."""
        self._lacks("show its texts to the injection and topics rails")

    def question(self, body: Body) -> str:
        """The last user message's text (RAG searches with it)."""
        self._lacks("take RAG")

    def with_context(self, body: Body, context: list[Body]) -> Body:
        """The request with ``context`` (chat messages, system first) given to the model."""
        self._lacks("take RAG")

    def with_prompt(self, body: Body, rendered: list[Body], defaults: dict[str, Any]) -> Body:
        """The request with a registry prompt's messages (chat messages) in front of its own
        and the prompt's parameters where the request sets none."""
        self._lacks("take registry prompts")

    def cache_view(self, body: Body) -> Body:
        """The request as the cache keys it: a chat-completions body."""
        self._lacks("take the cache")

    def wants_json(self, body: Body) -> Expected | None:
        """What the request asks the answer to be (JSON, maybe to a schema), or None."""
        self._lacks("take the JSON check")

    # -- the call -----------------------------------------------------------------------------

    def supports(self, deployment: Deployment, stream: bool) -> bool:
        capabilities = deployment.provider.capabilities
        return capabilities.streaming if stream else capabilities.chat

    @abstractmethod
    async def call(self, ex: Exchange, deployment: Deployment, body: Body) -> Body: ...

    def call_stream(self, ex: Exchange, deployment: Deployment, body: Body) -> Events:
        self._lacks("stream")

    # -- the answer ---------------------------------------------------------------------------

    @abstractmethod
    def restore(self, answer: Body, vault: Vault) -> Body: ...

    def restore_events(self, events: Events, vault: Vault) -> Events:
        self._lacks("stream")

    @abstractmethod
    def mask(self, answer: Body) -> int:
        """Mask the secrets in an answer, in place; return how many."""

    def mask_events(self, events: Events, counted: Callable[[int], None]) -> Events:
        self._lacks("stream")

    def usage(self, answer: Body) -> dict[str, Any] | None:
        """The answer's usage in chat-completions terms (``prompt_tokens``...)."""
        usage = answer.get("usage")
        return usage if isinstance(usage, dict) else None

    def json_texts(self, answer: Body) -> JsonTexts:
        """The texts of an answer the JSON check reads (not tool calls nor refusals)."""
        self._lacks("take the JSON check")

    def reask(self, body: Body, answer: str, why: str) -> Body:
        """The request again, with the unusable answer and what was wrong with it."""
        self._lacks("take the JSON check")

    def add_usage(self, answer: Body, more: Body) -> None:
        """Count what another answer (one asked for again) used in ``answer``'s usage."""
        self._lacks("take the JSON check")

    def summary(self, answer: Body) -> Body:
        """The answer as a trace stores it."""
        return answer

    def render(self, ex: Exchange, answer: Body, headers: list[tuple[bytes, bytes]]) -> Response:
        from stackyard.server.http import Response

        return Response.json(answer, headers=headers)

    def calls_tools(self, answer: Body | None, events: list[Event] | None) -> bool:
        return False

    # -- a stream -----------------------------------------------------------------------------

    def capture(self) -> ChunkCapture | EventCapture | None:
        return None

    def first(self, ex: Exchange, event: Event) -> Event:
        """The first event, as the client gets it (RAG's citations ride on it)."""
        return event

    def account(self, ex: Exchange, event: Event, settle: Settlement) -> None:
        """Learn the usage (and feed the trace's capture) from an event as it passes."""
        self._lacks("stream")

    def terminal(self, event: Event) -> bool:
        """Whether this event ends a stream properly (a finish reason; ``message_stop``)."""
        self._lacks("stream")

    def encode(self, ex: Exchange, event: Event) -> bytes | None:
        self._lacks("stream")

    def end(self, ex: Exchange) -> bytes:
        """What follows the last event (``data: [DONE]``)."""
        return b""

    def error_event(
        self, ex: Exchange, status: int, code: str, message: str, kind: str | None
    ) -> bytes:
        """An error after the first byte, as this door's SDK raises it."""
        self._lacks("stream")

    # -- answers from the cache ---------------------------------------------------------------

    def replay(self, entry: Entry) -> Body:
        self._lacks("take the cache")

    def replay_events(self, entry: Entry) -> list[Event]:
        self._lacks("take the cache")
