"""Stackyard: a self-hostable LLMOps stack behind one OpenAI-compatible gateway."""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stackyard.client import Client

__version__ = "0.1.0"
__all__ = ["Client", "__version__"]


def __getattr__(name: str) -> object:
    """``stackyard.Client`` without importing it (or its dependencies) at ``import stackyard``."""
    if name == "Client":
        from stackyard.client import Client

        return Client
    raise AttributeError(f"module 'stackyard' has no attribute {name!r}")
