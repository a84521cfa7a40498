"""Fine-tuning on a CUDA device: the same run as on the CPU (LoRA, packed, seeded) lowers the
loss, and its losses follow the CPU's closely (float32 on both; kernels differ in summation
order). Skipped without CUDA (CI has none)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stackyard.finetune.settings import Settings
from stackyard.finetune.train import Trainer
from tests.conftest import need_module, require_local_models
from tests.finetune.test_train import examples

torch = need_module("torch", module=True)
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


@pytest.mark.parametrize("tuning", ["lora", "full"])
def test_a_run_on_cuda_learns_what_the_cpu_run_learns(tmp_path: Path, tuning: str) -> None:
    require_local_models()
    losses: dict[str, list[float]] = {}
    for device in ("cpu", "cuda"):
        settings = Settings(
            tuning=tuning,  # type: ignore[arg-type]
            n_epochs=2,
            batch_size=4,
            learning_rate=2e-3 if tuning == "lora" else 1e-4,
            seed=3,
            device=device,
            checkpoint_every=1000,
        )
        events: list[dict[str, Any]] = []
        trainer = Trainer(settings, tmp_path / device, events.append)
        chat = trainer.load()
        assert trainer.device.startswith(device)
        items = [chat.encode(e) for e in examples(8)]
        before = trainer.mean_loss(items)
        trainer.train(items)
        assert trainer.mean_loss(items) < before
        losses[device] = [e["train_loss"] for e in events if e["type"] == "metrics"]
    assert losses["cuda"] == pytest.approx(losses["cpu"], rel=2e-2)
