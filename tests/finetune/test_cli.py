"""``stackyard finetune validate`` and ``run`` from the terminal, on a tiny dataset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from stackyard.cli import main
from tests.conftest import require_local_models

pytestmark = pytest.mark.slow


def test_validate_then_run(tmp_path: Path) -> None:
    require_local_models()
    rows = [
        {"instruction": f"What is {i} plus {i}?", "output": f"{2 * i}, quack."} for i in range(6)
    ]
    data = tmp_path / "data.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "x"}\n' + json.dumps(rows[0]) + "\n")
    runner = CliRunner()

    checked = runner.invoke(main, ["finetune", "validate", str(data)])
    assert checked.exit_code == 0, checked.output
    assert "6 examples" in checked.output
    refused = runner.invoke(main, ["finetune", "validate", str(bad)])
    assert refused.exit_code == 2
    assert "line 1: 'prompt' and 'completion' must both be strings" in refused.output

    config = tmp_path / "run.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "training_file": "data.jsonl",
                "output_dir": "runs",
                "suffix": "sums",
                "n_epochs": 2,
                "batch_size": 3,
                "learning_rate": 1e-3,
                "validation_split": 0.2,
                "eval_max_new_tokens": 8,
            }
        )
    )
    ran = runner.invoke(main, ["finetune", "run", str(config), "--id", "first"])
    assert ran.exit_code == 0, ran.output
    assert "validation_loss" in ran.output
    assert "- name: ft:smollm2:sums:first" in ran.output
    adapter = tmp_path / "runs" / "first" / "adapter"
    assert (adapter / "adapter_config.json").exists()
    result = json.loads((tmp_path / "runs" / "first" / "result.json").read_text())
    assert result["steps"] == 4  # 5 training examples in batches of 3, twice
    assert set(result["evaluation"]) == {"examples", "base", "tuned"}

    config.write_text(yaml.safe_dump({"training_file": "data.jsonl", "colour": "red"}))
    typo = runner.invoke(main, ["finetune", "run", str(config)])
    assert typo.exit_code == 2
    assert "colour" in typo.output
