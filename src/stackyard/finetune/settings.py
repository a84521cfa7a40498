"""A fine-tuning run's settings: the base model, OpenAI's hyperparameters, and our LoRA ones.
The same fields come from a job's API request (``hyperparameters`` and ``method``) and from a
``stackyard finetune run`` YAML file."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

BASE_LEARNING_RATE = 2e-4  # what learning_rate_multiplier multiplies, for LoRA
FULL_LEARNING_RATE = 2e-5  # and for full fine-tuning, which moves every weight

Tuning = Literal["lora", "full"]


def base_learning_rate(tuning: str) -> float:
    return FULL_LEARNING_RATE if tuning == "full" else BASE_LEARNING_RATE


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base: str = Field(default="smollm2", description="The local model to tune (its alias).")
    tuning: Tuning = Field(
        default="lora",
        description="'lora': low-rank adapters on the shared base; 'full': every weight "
        "(a model of its own, for small models).",
    )
    n_epochs: Annotated[int, Field(ge=1, le=50)] = 3
    batch_size: Annotated[int, Field(ge=1, le=256)] = 8
    learning_rate: Annotated[float, Field(gt=0, le=1)] = BASE_LEARNING_RATE
    warmup_ratio: Annotated[float, Field(ge=0, lt=1)] = 0.0
    lora_r: Annotated[int, Field(ge=1, le=256)] = 8
    lora_alpha: Annotated[int, Field(ge=1, le=512)] = 16
    lora_dropout: Annotated[float, Field(ge=0, lt=1)] = 0.0
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"]
    )
    max_length: Annotated[int, Field(ge=16, le=32768)] = Field(
        default=512, description="Longer examples are refused, never cut."
    )
    packing: bool = Field(default=True, description="Several examples per row, isolated.")
    seed: int = 0
    checkpoint_every: Annotated[int, Field(ge=1)] = 50
    validation_split: Annotated[float, Field(ge=0, lt=1)] = Field(
        default=0.1, description="Share held out when no validation file is given."
    )
    eval_examples: Annotated[int, Field(ge=0, le=10_000)] = Field(
        default=50, description="Validation examples answered by base and tuned models."
    )
    eval_max_new_tokens: Annotated[int, Field(ge=1, le=2048)] = 64
    device: Literal["auto", "cpu", "cuda"] = "auto"

    @model_validator(mode="before")
    @classmethod
    def _default_rate(cls, data: object) -> object:
        """Full fine-tuning's default learning rate is ten times lower than LoRA's."""
        if isinstance(data, dict) and data.get("tuning") == "full":
            return {"learning_rate": FULL_LEARNING_RATE, **data}
        return data
