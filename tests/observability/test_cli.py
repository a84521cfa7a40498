"""``stackyard traces list|show|tail`` against a store written by the trace writer."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import yaml
from click.testing import CliRunner

from stackyard.cli import main
from stackyard.observability.cli import waterfall
from stackyard.store.db import Database
from tests.observability.test_query import make, write


def config_for(tmp_path: Path) -> tuple[Path, Database]:
    url = f"sqlite:///{tmp_path / 'traces.db'}"
    path = tmp_path / "stackyard.yaml"
    path.write_text(yaml.safe_dump({"database_url": url}))
    db = Database(url)
    db.migrate()
    return path, db


async def test_list_and_show(tmp_path: Path) -> None:
    path, db = config_for(tmp_path)
    first, failed = make(model="alpha", spans=2), make(model="beta", status=502)
    await write(db, first, failed)
    runner = CliRunner()
    listed = runner.invoke(main, ["traces", "list", "--config", str(path)])
    assert listed.exit_code == 0, listed.output
    assert first.trace.request_id in listed.output
    assert failed.trace.request_id in listed.output
    errors = runner.invoke(main, ["traces", "list", "--status", "error", "--config", str(path)])
    assert failed.trace.request_id in errors.output
    assert first.trace.request_id not in errors.output
    shown = runner.invoke(main, ["traces", "show", first.trace.request_id, "--config", str(path)])
    assert shown.exit_code == 0, shown.output
    assert f"trace {first.trace.trace_id}" in shown.output
    assert "chat alpha" in shown.output
    assert "step 1" in shown.output
    assert "[EMAIL]" in shown.output  # the stored, redacted request body
    missing = runner.invoke(main, ["traces", "show", "nope", "--config", str(path)])
    assert missing.exit_code == 1
    assert "no trace 'nope'" in missing.output


def test_waterfall_nests_children_under_their_parent() -> None:
    spans = [
        {
            "span_id": "r",
            "parent_id": "x",
            "name": "root",
            "start_ns": 0,
            "end_ns": 100,
            "duration_ms": 1e-4,
            "status": "ok",
        },
        {
            "span_id": "c",
            "parent_id": "r",
            "name": "child",
            "start_ns": 50,
            "end_ns": 100,
            "duration_ms": 5e-5,
            "status": "error",
        },
    ]
    root, child = waterfall(spans, width=10)
    assert root.startswith("root")
    assert "█" * 10 in root
    assert child.startswith("  child")
    assert child.endswith("!")
    assert "     █████" in child


def test_tail_prints_traces_as_they_are_stored(tmp_path: Path) -> None:
    path, db = config_for(tmp_path)
    follower = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "stackyard",
            "traces",
            "tail",
            "--max",
            "2",
            "--interval",
            "0.1",
            "--config",
            str(path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.0)  # traffic arrives while it follows (it also shows the last 5 s's)
    rows = [make(model="live"), make(model="live")]
    asyncio.run(write(db, *rows))
    out, err = follower.communicate(timeout=30)
    assert follower.returncode == 0, err
    assert [line.split()[2] for line in out.splitlines()] == [r.trace.request_id for r in rows]
