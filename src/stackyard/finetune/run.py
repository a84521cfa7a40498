"""One fine-tuning run, from a config to a served adapter: check the data, train, evaluate
against the base model. ``stackyard finetune run`` and the job worker both call :func:`run`."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import Field, ValidationError

from stackyard.finetune.dataset import prepare, split
from stackyard.finetune.settings import Settings
from stackyard.finetune.train import Control, Event, Trainer, write_result

if TYPE_CHECKING:
    from stackyard.finetune.distributed import RayTraining

SUFFIX = re.compile(r"^[a-z0-9-]{0,40}$")


class RunConfig(Settings):
    training_file: str = Field(description="JSONL: chat, prompt/completion or Alpaca lines.")
    validation_file: str | None = Field(
        default=None, description="JSONL held out (default: validation_split of the data)."
    )
    output_dir: str = Field(default="finetune-runs", description="Where runs are written.")
    suffix: str = Field(default="", description="Part of the model id: ft:BASE:SUFFIX:ID.")


class InvalidData(ValueError):
    def __init__(self, report: dict[str, Any]) -> None:
        errors = report["errors"]
        shown = "; ".join(f"line {e['line']}: {e['message']}" for e in errors[:5])
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        super().__init__(f"the dataset has {len(errors)} bad lines: {shown}{more}")
        self.report = report


def load_config(path: Path) -> RunConfig:
    try:
        raw = yaml.safe_load(path.read_text()) or {}
        config = RunConfig.model_validate(raw)
    except (yaml.YAMLError, ValidationError) as exc:
        raise ValueError(f"{path}: {exc}") from None
    base_dir = path.resolve().parent
    updates = {}
    for name in ("training_file", "validation_file", "output_dir"):
        value = getattr(config, name)
        if value and not Path(value).is_absolute():
            updates[name] = str(base_dir / value)
    return config.model_copy(update=updates)


def model_id(base: str, suffix: str, run_id: str) -> str:
    return f"ft:{base}:{suffix}:{run_id}" if suffix else f"ft:{base}::{run_id}"


def _lines(path: str) -> list[str]:
    return Path(path).read_text(encoding="utf-8").splitlines()


def run(
    config: RunConfig,
    out_dir: Path,
    *,
    on_event: Event | None = None,
    control: Control | None = None,
    cluster: RayTraining | None = None,
) -> dict[str, Any]:
    """Train (here, or on ``cluster``) and evaluate here; the result (also written to
    ``out_dir/result.json``)."""
    emit = on_event or (lambda event: None)
    out_dir.mkdir(parents=True, exist_ok=True)
    settings = Settings.model_validate(config.model_dump(include=set(Settings.model_fields)))
    trainer = Trainer(settings, out_dir, emit)
    emit({"type": "loading", "base": settings.base})
    chat = trainer.load()
    data = prepare(_lines(config.training_file), chat)
    report = data.report(epochs=settings.n_epochs, device=trainer.device)
    if data.errors:
        raise InvalidData(report)
    if config.validation_file:
        held = prepare(_lines(config.validation_file), chat)
        if held.errors:
            raise InvalidData(held.report())
        train = data
    else:
        train, held = split(data, settings.validation_split, settings.seed)
    if not train.tokenized:
        raise InvalidData({**report, "errors": [{"line": 0, "message": "no training examples"}]})
    emit(
        {
            "type": "validated",
            **report,
            "train": len(train.tokenized),
            "validation": len(held.tokenized),
        }
    )
    judged = held.examples[: settings.eval_examples]
    base = None
    if trainer.full:  # the base's weights are gone once training starts
        emit({"type": "evaluating", "examples": len(judged), "model": "base"})
        base = trainer.scores(held.tokenized, judged, tuned=False)
    if cluster is not None:
        result = cluster.train(trainer, train.tokenized, emit, control)
    else:
        result = trainer.train(train.tokenized, control)
    emit({"type": "evaluating", "examples": len(judged)})
    result.evaluation = trainer.evaluate(held.tokenized, judged, base)
    write_result(out_dir, result)
    return json.loads((out_dir / "result.json").read_text())  # type: ignore[no-any-return]
