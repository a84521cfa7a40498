"""The injection trainer's command line: switches that need ``--deep`` say so, and a threshold
read again without training takes nothing it would ignore."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stackyard.guardrails import training


@pytest.mark.parametrize("switch", ["--threshold-only", "--tensor-trust"])
def test_a_switch_for_the_fine_tuned_classifier_needs_deep(
    switch: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "jailbreak").mkdir()
    with pytest.raises(SystemExit) as exit_:
        training.main(["--data", str(tmp_path), "--out", str(tmp_path / "x.json"), switch])
    assert exit_.value.code == 2
    assert "are for --deep" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()


def test_threshold_only_takes_no_training_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "jailbreak").mkdir()
    out = ["--data", str(tmp_path), "--out", str(tmp_path / "x.json")]
    with pytest.raises(SystemExit) as exit_:
        training.main([*out, "--deep", "--threshold-only", "--epochs", "2"])
    assert exit_.value.code == 2
    assert "not --threshold-only" in capsys.readouterr().err


def test_threshold_only_refuses_another_validation_part(tmp_path: Path) -> None:
    """Prompts other than those the classifier was trained on would give another validation
    seventh, so another threshold: refused before anything is read."""
    from stackyard.guardrails import injection_finetune

    out = tmp_path / "injection.json"
    saved = {"weights": [0.0], "bias": 0.0, "threshold": 0.9, "meta": {"prompts": 4306}}
    out.write_text(json.dumps(saved))
    with pytest.raises(SystemExit, match="trained on 4306 prompts, these are 2"):
        injection_finetune.rethreshold(["a", "b"], [True, False], out)
    assert json.loads(out.read_text()) == saved
