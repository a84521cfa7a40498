"""The fine-tuning section of the configuration: where jobs run and keep their files."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from stackyard.config.strict import Strict as _Strict


class FinetuneConfig(_Strict):
    data_dir: str | None = Field(
        default=None,
        description="Where jobs keep checkpoints and adapters (default: finetune-jobs/ next "
        "to the config).",
    )
    max_workers: Annotated[int, Field(ge=0, le=64)] = Field(
        default=1,
        description="Jobs this instance trains at once, each in its own process (0: none; "
        "another instance trains them).",
    )
    ray_workers: Annotated[int, Field(ge=1, le=1024)] = Field(
        default=1,
        description="With ray_address set: Ray Train workers per job (data parallel; each "
        "holds a copy of the model).",
    )
    ray_use_gpu: bool = Field(
        default=False, description="With ray_address set: one GPU per Ray Train worker."
    )
