"""The command line the shipped models' trainers share (``make cache-verifier``, ``make
guardrails-injection``, ``make guardrails-ner``): ``--data``, the project's ``../shared/data``
by default, and ``--out``, where the weights are written (by default the shipped file)."""

from __future__ import annotations

import argparse
from pathlib import Path

#: ``../shared/data`` beside the repository (src/stackyard/ is two levels below its root).
SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def trainer_parser(doc: str, out: Path) -> argparse.ArgumentParser:
    """A parser described by the first paragraph of ``doc``, with ``--data`` and ``--out``."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=SHARED_DATA, help="the shared data folder")
    parser.add_argument("--out", type=Path, default=out, help="where the weights are written")
    return parser
