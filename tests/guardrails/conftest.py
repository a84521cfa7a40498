"""The guardrails tests' shared in-process embedding model (all-MiniLM-L6-v2, as the rails
load it), loaded once for the session; a test that takes it is skipped where the ``local``
extra or the model is missing (and fails under CI)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import need_module, unavailable


@pytest.fixture(scope="session")
def embedder() -> Any:
    need_module("sentence_transformers")
    from stackyard.engine.loading import load_embedder
    from stackyard.engine.sources import ModelSourceError, resolve

    try:
        return load_embedder(resolve("all-minilm-l6-v2", "embeddings"), "cpu")
    except ModelSourceError as exc:
        unavailable(str(exc))
