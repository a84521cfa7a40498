"""``stackyard prompts``: files in, versions, labels, diffs and rollbacks out."""

from __future__ import annotations

from pathlib import Path

import yaml
from click.testing import CliRunner

from stackyard.cli import main


def test_push_show_label_diff_rollback(tmp_path: Path) -> None:
    config = tmp_path / "stackyard.yaml"
    config.write_text(yaml.safe_dump({"database_url": f"sqlite:///{tmp_path / 'p.db'}"}))
    folder = tmp_path / "prompts"
    folder.mkdir()
    (folder / "summary.md").write_text(
        "---\nvariables:\n  text: {type: string}\nconfig: {temperature: 0.2}\n---\n"
        "Summarise in one line: {{text}}\n"
    )
    (folder / "support.yaml").write_text(
        yaml.safe_dump(
            {
                "messages": [
                    {"role": "system", "content": "Be kind."},
                    {"role": "user", "content": "{{question}}"},
                ]
            }
        )
    )
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(main, ["prompts", *args, "--config", str(config)])
        assert result.exit_code == 0, result.output
        return result.output

    out = run("push", str(folder), "-m", "first", "--label", "production")
    assert "summary: new version 1 -> production" in out
    assert "support: new version 1 -> production" in out
    assert "unchanged, still version 1" in run("push", str(folder / "summary.md"))
    (folder / "summary.md").write_text(
        "---\nvariables:\n  text: {type: string}\n---\nSummarise briefly: {{text}}\n"
    )
    assert "summary: new version 2" in run("push", str(folder / "summary.md"))
    listed = run("list")
    assert "summary" in listed
    assert "production=1" in listed
    assert "Summarise in one line" in run("show", "summary:production")
    assert "Summarise briefly" in run("show", "summary@2")
    diff = run("diff", "summary", "1", "2")
    assert "-Summarise in one line: {{text}}" in diff
    assert 'config: {"temperature": 0.2} -> {}' in diff
    run("label", "set", "summary", "2", "production")
    assert "Summarise briefly" in run("show", "summary:production")
    assert "version 1" in run("rollback", "summary", "production")
    audit = run("audit", "summary")
    assert audit.count("label") >= 2
    assert "rollback" in audit

    missing = runner.invoke(main, ["prompts", "show", "nope", "--config", str(config)])
    assert missing.exit_code == 1
    assert "no prompt 'nope'" in missing.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"template": "x", "config": {"colour": "red"}}))
    refused = runner.invoke(main, ["prompts", "push", str(bad), "--config", str(config)])
    assert refused.exit_code == 2
    assert "unknown parameter 'colour'" in refused.output


def test_pull_writes_files_that_push_back_unchanged(tmp_path: Path) -> None:
    config = tmp_path / "stackyard.yaml"
    config.write_text(yaml.safe_dump({"database_url": f"sqlite:///{tmp_path / 'p.db'}"}))
    source = tmp_path / "source.yaml"
    source.write_text(
        yaml.safe_dump(
            {
                "name": "faq",
                "messages": [
                    {"role": "system", "content": "Answer from the FAQ."},
                    {"type": "placeholder", "name": "history"},
                    {"role": "user", "content": "{{question}}"},
                ],
                "variables": {"question": {"type": "string", "description": "the question"}},
                "config": {"temperature": 0},
                "engine": "jinja",
            }
        )
    )
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(main, ["prompts", *args, "--config", str(config)])
        assert result.exit_code == 0, result.output
        return result.output

    run("push", str(source), "--label", "production")
    pulled = tmp_path / "pulled"
    assert "faq:production -> version 1" in run("pull", str(pulled))
    assert "unchanged, still version 1" in run("push", str(pulled / "faq.yaml"))
