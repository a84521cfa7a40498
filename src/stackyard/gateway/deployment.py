"""A deployment at run time: its config entry, its provider, its load and its health."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from stackyard.config.schema import ModelEntry
from stackyard.gateway.health import Health
from stackyard.gateway.providers.base import Provider


@dataclass(eq=False, slots=True)
class Deployment:
    id: str
    name: str
    entry: ModelEntry
    provider: Provider
    health: Health
    weight: float = 1.0
    outstanding: int = field(default=0)
    #: The entry's ``defaults``, as a dict (empty: none).
    defaults: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.defaults = self.entry.defaults.given()

    def chat_body(self, body: dict[str, Any]) -> dict[str, Any]:
        """A chat-completions body with this deployment's defaults where it sets nothing."""
        if not self.defaults:
            return body
        missing = {k: v for k, v in self.defaults.items() if body.get(k) is None}
        if "max_completion_tokens" in body:
            missing.pop("max_tokens", None)
        return {**body, **missing} if missing else body

    def messages_body(self, body: dict[str, Any]) -> dict[str, Any]:
        """A Messages body for Anthropic with the defaults it has a field for (``stop`` as
        ``stop_sequences``; ``max_tokens`` is always the request's own, which Messages
        requires)."""
        if not self.defaults:
            return body
        names = {"temperature": "temperature", "top_p": "top_p", "stop": "stop_sequences"}
        missing = {
            names[k]: v
            for k, v in self.defaults.items()
            if k in names and body.get(names[k]) is None
        }
        return {**body, **missing} if missing else body

    @property
    def external(self) -> bool:
        if self.entry.external is not None:
            return self.entry.external
        return self.provider.capabilities.external
