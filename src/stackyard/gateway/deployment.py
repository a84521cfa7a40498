"""A deployment at run time: its config entry, its provider, its load and its health."""

from __future__ import annotations

from dataclasses import dataclass, field

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

    @property
    def external(self) -> bool:
        if self.entry.external is not None:
            return self.entry.external
        return self.provider.capabilities.external
