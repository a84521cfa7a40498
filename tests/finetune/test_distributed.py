"""A fine-tuning run on a local Ray runtime with two data-parallel workers: it learns what a
local run learns, sends its checkpoints and result back to the driver's folder, stops when the
driver asks, and resumes from the driver's checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stackyard.finetune.settings import Settings
from stackyard.finetune.train import Stopped, Trainer
from tests.conftest import need_module, require_local_models
from tests.finetune.test_train import examples

pytestmark = pytest.mark.slow


def test_two_ray_workers_learn_what_one_local_run_learns_and_resume(tmp_path: Path) -> None:
    require_local_models()
    need_module("ray.train")
    from stackyard.finetune.distributed import RayTraining

    settings = Settings(n_epochs=3, batch_size=4, learning_rate=2e-3, seed=3, checkpoint_every=2)
    local = Trainer(settings, tmp_path / "local")
    chat = local.load()
    data = examples(8)
    items = [chat.encode(e) for e in data]
    local.train(items)
    learned = local.mean_loss(items)

    cluster = RayTraining("local", workers=2)
    events: list[dict[str, Any]] = []
    driver = Trainer(settings, tmp_path / "ray", events.append)
    driver.load()
    before = driver.mean_loss(items)

    def pause_after_a_checkpoint() -> str | None:
        return "pause" if any(e["type"] == "checkpoint" for e in events) else None

    with pytest.raises(Stopped) as stopped:
        cluster.train(driver, items, events.append, pause_after_a_checkpoint)
    assert stopped.value.why == "pause"
    assert 2 <= stopped.value.step < 6
    saved = driver.checkpoints()
    assert saved[-1].name == f"step-{stopped.value.step:06d}"  # sent back to the driver
    assert (saved[-1] / "adapter_model.safetensors").exists()
    first = [e for e in events if e["type"] == "metrics"]
    assert [e["step"] for e in first] == list(range(1, stopped.value.step + 1))
    assert first[0]["total_steps"] == 6

    resumed: list[dict[str, Any]] = []
    again = Trainer(settings, tmp_path / "ray", resumed.append)
    again.load()
    result = cluster.train(again, items, resumed.append)
    assert resumed[0] == {"type": "cluster", "address": "local", "workers": 2}
    assert resumed[1] == {
        "type": "resumed",
        "step": stopped.value.step,
        "path": str(saved[-1]),
    }
    assert result.steps == 6
    assert result.adapter == tmp_path / "ray" / "adapter"
    assert (result.adapter / "adapter_config.json").exists()
    # The driver holds the tuned weights: the loss of the local run, summed on two workers.
    assert again.mean_loss(items) == pytest.approx(learned, rel=2e-3)
    assert again.mean_loss(items) < before * 0.8
