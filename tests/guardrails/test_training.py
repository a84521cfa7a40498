"""The injection trainer's command line: switches that need ``--deep`` say so."""

from __future__ import annotations

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
