"""Training on SmolLM2 for real, a few steps on a few Alpaca examples: packing isolates
examples, the loss goes down, a seed repeats a run, a stopped run resumes where it stopped,
and the evaluation compares base and tuned models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from stackyard.finetune.data import parse
from stackyard.finetune.packing import collate
from stackyard.finetune.settings import Settings
from stackyard.finetune.tokens import ChatTokenizer
from stackyard.finetune.train import Stopped, Trainer
from tests.conftest import require_local_models

pytestmark = pytest.mark.slow

ALPACA = Path(__file__).resolve().parents[3] / "shared" / "data" / "alpaca" / "alpaca_5000.json"


def examples(count: int) -> list[Any]:
    if ALPACA.exists():
        records = json.loads(ALPACA.read_text())[:200]
        short = [r for r in records if len(r["output"]) < 80 and len(r["instruction"]) < 120]
    else:  # a user's clone has no ../shared: a few made-up ones
        short = [
            {"instruction": f"Repeat the number {i}.", "input": "", "output": str(i)}
            for i in range(count)
        ]
    return [parse(r, i + 1) for i, r in enumerate(short[:count])]


@pytest.fixture(scope="module")
def trainer(tmp_path_factory: pytest.TempPathFactory) -> Trainer:
    require_local_models()
    settings = Settings(n_epochs=3, batch_size=4, learning_rate=2e-3, lora_r=8, seed=3)
    made = Trainer(settings, tmp_path_factory.mktemp("run"))
    made.load()
    return made


def test_packed_examples_do_not_see_each_other(trainer: Trainer) -> None:
    import torch

    chat = ChatTokenizer(trainer.tokenizer, 512)
    items = [chat.encode(e) for e in examples(3)]
    with torch.no_grad():
        packed = float(trainer.loss(collate(items, 512, pad_id=trainer.pad_id, packed=True)))
        alone = sum(
            float(trainer.loss(collate([i], 512, pad_id=trainer.pad_id, packed=False)))
            for i in items
        )
        padded = float(trainer.loss(collate(items, 512, pad_id=trainer.pad_id, packed=False)))
    assert packed == pytest.approx(alone, rel=1e-4)
    assert padded == pytest.approx(alone, rel=1e-4)
    batch = collate(items, 512, pad_id=trainer.pad_id, packed=True)
    assert batch.input_ids.shape[0] == 1  # one row, no padding
    assert batch.tokens == sum(len(i) for i in items)


def run_to_end(settings: Settings, out: Path, items: list[Any], control: Any = None) -> Any:
    trainer = Trainer(settings, out)
    trainer.load()
    return trainer, trainer.train(items, control)


def test_training_lowers_the_loss_repeats_and_resumes(tmp_path: Path, trainer: Trainer) -> None:
    chat = ChatTokenizer(trainer.tokenizer, 512)
    data = examples(8)
    items = [chat.encode(e) for e in data]
    settings = trainer.settings.model_copy(update={"checkpoint_every": 2})
    events: list[dict[str, Any]] = []
    first = Trainer(settings, tmp_path / "a", events.append)
    first.load()
    before = first.mean_loss(items)
    result = first.train(items)
    after = first.mean_loss(items)
    assert result.steps == 6
    assert after < before * 0.8
    losses = [e["train_loss"] for e in events if e["type"] == "metrics"]
    assert len(losses) == 6
    assert [e["step"] for e in events if e["type"] == "checkpoint"] == [2, 4]
    assert (result.adapter / "adapter_config.json").exists()

    # The same seed, stopped after three steps, then resumed in a new trainer: the same end.
    asked = iter([None, None, None, "pause"])
    with pytest.raises(Stopped) as stopped:
        run_to_end(settings, tmp_path / "b", items, lambda: next(asked))
    assert (stopped.value.why, stopped.value.step) == ("pause", 3)
    resumed_events: list[dict[str, Any]] = []
    second = Trainer(settings, tmp_path / "b", resumed_events.append)
    second.load()
    second.train(items)
    assert resumed_events[0] == {
        "type": "resumed",
        "step": 3,
        "path": str(tmp_path / "b" / "checkpoints" / "step-000003"),
    }
    assert second.mean_loss(items) == pytest.approx(after, rel=1e-3)

    report = first.evaluate(items[:2], data[:2])
    assert report["base"]["validation_loss"] > report["tuned"]["validation_loss"]
    assert set(report["tuned"]) >= {"exact_match", "f1", "samples"}


def test_full_tuning_trains_every_weight_resumes_and_saves_a_servable_model(
    tmp_path: Path, trainer: Trainer
) -> None:
    import shutil

    import torch
    import transformers

    from stackyard.engine.sources import resolve

    chat = ChatTokenizer(trainer.tokenizer, 512)
    data = examples(4)
    items = [chat.encode(e) for e in data]
    settings = Settings(
        tuning="full",
        n_epochs=2,
        batch_size=2,
        learning_rate=1e-4,
        checkpoint_every=2,
        seed=5,
        eval_max_new_tokens=8,
    )
    events: list[dict[str, Any]] = []
    first = Trainer(settings, tmp_path / "a", events.append)
    first.load()
    assert sum(p.numel() for p in first.model.parameters() if p.requires_grad) > 100_000_000
    base = first.scores(items[:2], data[:2], tuned=False)
    result = first.train(items)
    assert result.steps == 4
    assert first.mean_loss(items) < base["validation_loss"]
    assert [e["step"] for e in events if e["type"] == "checkpoint"] == [2]
    kept = first.checkpoints()
    report = first.evaluate(items[:2], data[:2], base)
    assert report["base"] is base
    assert report["tuned"]["validation_loss"] < base["validation_loss"]

    # A new trainer given the step-2 checkpoint ends with the same weights.
    (tmp_path / "b" / "checkpoints").mkdir(parents=True)
    shutil.copytree(kept[0], tmp_path / "b" / "checkpoints" / kept[0].name)
    second = Trainer(settings.model_copy(update={"checkpoint_every": 1}), tmp_path / "b")
    second.load()
    second.train(items)
    assert second.mean_loss(items) == pytest.approx(first.mean_loss(items), rel=1e-4)
    # It wrote one at step 3 and dropped step 2's: whole models, the latest only.
    assert [p.name for p in second.checkpoints()] == ["step-000003"]

    # The saved model is a model directory the local provider serves, with the same outputs.
    source = resolve(str(result.adapter))
    assert source.task == "chat"
    saved = transformers.AutoModelForCausalLM.from_pretrained(str(source.directory))
    ids = torch.tensor([items[0].input_ids])
    with torch.no_grad():
        assert torch.allclose(saved(ids).logits, first.model(ids).logits, atol=1e-4)
    with pytest.raises(ValueError, match="before training"):
        first.evaluate(items[:2], data[:2])
