"""The whole server in this process with a ``local`` model whose engine a test builds (a tiny
random Llama), and the official SDKs on it, strict about the responses' shape: what the
in-process engine's door tests share. Import it after ``need_module("torch")``."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anthropic
import openai

from stackyard.engine.scheduler import Engine
from stackyard.gateway.providers.local import LocalProvider
from tests.server.harness import running, sdks


def tiny_config(tmp_path: Path) -> dict[str, Any]:
    """A gateway with one lazy ``local`` chat model, ``tiny``, whose engine the test sets."""
    folder = tmp_path / "tiny"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "llama"}))
    return {
        "models": [
            {
                "name": "tiny",
                "provider": "local",
                "model": str(folder),
                "options": {"load": "lazy", "task": "chat"},
            }
        ],
        "router": {"retries": 0},
        "database_url": f"sqlite:///{tmp_path / 'db.sqlite'}",
    }


@contextlib.asynccontextmanager
async def serving(
    config: dict[str, Any], engine: Callable[[], Engine], strict: bool = True
) -> AsyncIterator[tuple[openai.AsyncOpenAI, anthropic.AsyncAnthropic]]:
    """The server of ``config`` with ``engine()`` behind ``tiny``, and the two SDKs on it."""
    async with running(config) as (app, _):
        [deployment] = app.gateway.router.deployments["tiny"]
        provider = deployment.provider
        assert isinstance(provider, LocalProvider)
        provider._engine = engine()
        async with sdks(app, strict=strict) as (oa, an):
            try:
                yield oa, an
            finally:
                provider._engine.stop()
