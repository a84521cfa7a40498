"""The one place where providers are registered.

A provider is one module exposing a class that satisfies :class:`Provider`; it is registered
here by name, as ``"module:attribute"`` so that heavy dependencies (torch for ``local``) load
only when a deployment uses them. Third-party code calls :func:`register` the same way.
"""

from __future__ import annotations

import importlib

from stackyard.config.schema import ModelEntry
from stackyard.gateway.providers.base import Provider, ProviderFactory
from stackyard.gateway.providers.http import HttpClient

_REGISTRY: dict[str, ProviderFactory | str] = {
    "openai": "stackyard.gateway.providers.openai:OpenAIProvider",
    "openai-compatible": "stackyard.gateway.providers.openai:OpenAICompatibleProvider",
    "anthropic": "stackyard.gateway.providers.anthropic:AnthropicProvider",
    "local": "stackyard.gateway.providers.local:LocalProvider",
}


def register(name: str, factory: ProviderFactory | str) -> None:
    """Register ``factory`` (or a ``"module:attribute"`` path to it) under ``name``."""
    _REGISTRY[name] = factory


def names() -> list[str]:
    return sorted(_REGISTRY)


def factory(name: str) -> ProviderFactory:
    found = _REGISTRY[name]
    if isinstance(found, str):
        module_name, _, attribute = found.partition(":")
        found = getattr(importlib.import_module(module_name), attribute)
        assert not isinstance(found, str)
        _REGISTRY[name] = found
    return found


def create(entry: ModelEntry, http: HttpClient) -> Provider:
    """Build the provider for one deployment."""
    return factory(entry.provider)(entry, http)
