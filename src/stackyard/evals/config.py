"""An evaluation's YAML file: the dataset, the candidate (a prompt, a model, or both), the
scorers with their thresholds, and the baseline to compare with."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from stackyard.evals.runner import Target
from stackyard.evals.scorers.registry import build
from stackyard.prompts.model import describe_error


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PromptRef(_Strict):
    name: str
    label: str | None = None
    version: int | None = None


class Candidate(_Strict):
    prompt: PromptRef | None = None
    model: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    #: A saved run (JSON) instead of running anything: only for a baseline.
    run: Path | None = None

    def target(self) -> Target:
        prompt = self.prompt.model_dump(exclude_none=True) if self.prompt else None
        return Target(prompt, self.model, dict(self.params))


class EvalConfig(_Strict):
    name: str
    dataset: Path
    gateway: str | None = Field(
        default=None, description="The gateway's URL (default: STACKYARD_BASE_URL or :8000)."
    )
    prompt: PromptRef | None = None
    model: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    scorers: list[dict[str, Any]]
    concurrency: int = Field(default=8, ge=1, le=256)
    baseline: Candidate | None = None
    max_drop: float = Field(default=0.02, ge=0, le=1)
    alpha: float = Field(default=0.05, gt=0, lt=1)
    out: Path = Path("eval-reports")

    @field_validator("scorers")
    @classmethod
    def _scorers_build(cls, scorers: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not scorers:
            raise ValueError("at least one scorer is needed")
        names = []
        for spec in scorers:
            names.append(build(spec).name)
        if len(set(names)) != len(names):
            raise ValueError("two scorers share a name: give one a 'name'")
        return scorers

    def candidate(self) -> Target:
        prompt = self.prompt.model_dump(exclude_none=True) if self.prompt else None
        if prompt is None and self.model is None:
            raise ValueError("name a 'prompt', a 'model', or both")
        return Target(prompt, self.model, dict(self.params))


def load_config(path: Path) -> EvalConfig:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping")
    try:
        config = EvalConfig.model_validate(data)
    except ValidationError as exc:
        raise ValueError(f"{path}: {describe_error(exc)}") from None
    base = path.parent
    if not config.dataset.is_absolute():
        config.dataset = base / config.dataset
    if config.baseline and config.baseline.run and not config.baseline.run.is_absolute():
        config.baseline.run = base / config.baseline.run
    return config
