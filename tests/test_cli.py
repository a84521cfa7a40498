"""The ``stackyard`` command: config checks and the server's start-up refusals."""

from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from stackyard import __version__
from stackyard.cli import main


def test_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


def test_config_check_summarises_models(tmp_path: Path) -> None:
    path = tmp_path / "stackyard.yaml"
    path.write_text(
        "models:\n"
        "  - {name: a, provider: openai, api_key: x}\n"
        "  - {name: a, provider: openai-compatible, api_base: 'http://127.0.0.1:1/v1'}\n"
        "  - {name: b, provider: openai-compatible, api_base: 'http://127.0.0.1:2/v1'}\n"
        "router:\n  fallbacks: {a: [b]}\n"
    )
    result = CliRunner().invoke(main, ["config", "check", "--config", str(path)])
    assert result.exit_code == 0, result.output
    assert "valid" in result.output
    assert "a: 2 deployments (openai, openai-compatible); falls back to b" in result.output


def test_config_check_rejects_a_provider_that_lacks_what_it_needs(tmp_path: Path) -> None:
    path = tmp_path / "stackyard.yaml"
    path.write_text("models:\n  - {name: a, provider: openai-compatible}\n")
    result = CliRunner().invoke(main, ["config", "check", "--config", str(path)])
    assert result.exit_code == 2
    assert "models[0] (a): provider 'openai-compatible' needs 'api_base'" in result.output


def test_providers_are_listed() -> None:
    result = CliRunner().invoke(main, ["providers"])
    assert result.output.split() == ["anthropic", "local", "openai", "openai-compatible"]


def test_serve_refuses_an_invalid_config_before_listening(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("models:\n  - name: a\n    provider: openai\n    weight: -1\n")
    done = subprocess.run(
        [sys.executable, "-m", "stackyard", "serve", "--config", str(path), "--port", "1"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert f"{path}:4: models[0].weight: Input should be greater than 0" in done.stderr
    assert "Traceback" not in done.stderr


def succeed(config: Path, *args: str) -> str:
    """The output of a CLI command run with ``config``, which must succeed."""
    result = CliRunner().invoke(main, [*args, "--config", str(config)])
    assert result.exit_code == 0, result.output
    return result.output


def test_teams_keys_and_spend_from_the_cli(tmp_path: Path) -> None:
    config = tmp_path / "stackyard.yaml"
    config.write_text("models: []\n")
    runner = CliRunner()

    run = functools.partial(succeed, config)

    assert "created team search" in run("teams", "create", "search", "--rpm", "60", "--budget", "5")
    assert "created user ada@example.com" in run(
        "users", "create", "ada@example.com", "--team", "search"
    )
    assert "ada@example.com" in run("users", "list")
    assert "search" in run("teams", "list")
    created = run(
        "keys", "create", "--team", "search", "--user", "ada@example.com", "--models", "a,b"
    )
    key = created.splitlines()[0]
    assert key.startswith("sk-sy-")
    listed = run("keys", "list")
    assert key[:10] in listed
    assert key not in listed  # only the prefix is ever shown again
    key_id = next(line.split()[0] for line in listed.splitlines() if line.startswith("key_"))
    assert f"revoked {key_id}" in run("keys", "revoke", key_id)
    assert key_id not in run("keys", "list")
    assert "no requests since" in run("spend", "--by", "model", "--since", "1d")
    assert (tmp_path / "stackyard.db").exists()  # the store sits next to the config
    bad = runner.invoke(main, ["keys", "create", "--team", "nope", "--config", str(config)])
    assert bad.exit_code == 2
    assert "no team 'nope'" in bad.output


def test_organisations_and_the_daily_report_from_the_cli(tmp_path: Path) -> None:
    import time

    from stackyard.store.db import Database
    from stackyard.store.spend_writer import SpendWriter, spend_row

    config = tmp_path / "stackyard.yaml"
    config.write_text("models: []\n")
    runner = CliRunner()

    run = functools.partial(succeed, config)

    assert "created organisation acme" in run("orgs", "create", "acme", "--budget", "100")
    assert "acme" in run("orgs", "list")
    assert "created team search" in run("teams", "create", "search", "--org", "acme")
    org_id = run("orgs", "list").splitlines()[1].split()[0]
    assert org_id in run("teams", "list")
    bad = runner.invoke(main, ["teams", "create", "x", "--org", "nope", "--config", str(config)])
    assert bad.exit_code == 2
    assert "no organisation 'nope'" in bad.output
    db = Database(f"sqlite:///{tmp_path / 'stackyard.db'}")
    now = time.time()
    SpendWriter(db).insert(
        [
            spend_row(
                request_id=f"r{i}",
                created_at=now - 86400 * (i % 2),  # today and yesterday
                organization_id=org_id,
                model="m",
                endpoint="chat",
                cost_usd=1.0 + i,
                latency_ms=10.0,
                status=200,
                cache_hit=False,
                prompt_tokens=1,
                completion_tokens=1,
            )
            for i in range(4)
        ]
    )
    db.dispose()
    report = run("spend", "--by", "organization", "--since", "2d", "--daily")
    header, yesterday, today = report.splitlines()[:3]
    assert header.split() == [
        "day",
        "organization",
        "requests",
        "errors",
        "cache_hits",
        "mean_latency_ms",
        "cost_usd",
        "cost",
    ]
    assert yesterday.split()[1:3] == ["acme", "2"]
    assert yesterday.split()[-2] == "6"
    assert today.split()[-2:] == ["4", "#" * round(20 * 4 / 6)]  # a bar scaled to the max
    assert "total: $10.000000 over 4 requests" in report


def test_a_soft_budget_from_the_cli(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from stackyard.cli import main

    config = tmp_path / "stackyard.yaml"
    config.write_text(f"database_url: sqlite:///{tmp_path / 'soft.db'}\n")
    runner = CliRunner()
    made = runner.invoke(
        main, ["teams", "create", "ops", "--budget", "5", "--soft", "--config", str(config)]
    )
    assert made.exit_code == 0, made.output
    listed = runner.invoke(main, ["teams", "list", "--config", str(config)])
    header, row = listed.output.splitlines()[:2]
    assert header.split()[-1] == "budget_soft"
    assert row.split()[-1] == "True"


def test_the_guardrails_audit_from_the_cli(tmp_path: Path) -> None:
    import time

    from stackyard.store import admin
    from stackyard.store.audit_writer import AuditWriter
    from stackyard.store.db import Database

    config = tmp_path / "stackyard.yaml"
    config.write_text("models: []\n")
    runner = CliRunner()
    empty = runner.invoke(main, ["guardrails", "audit", "--config", str(config)])
    assert empty.exit_code == 0, empty.output
    assert "no guardrail decisions since" in empty.output
    db = Database(f"sqlite:///{tmp_path / 'stackyard.db'}")
    team = admin.create_team(db, "search")
    AuditWriter(db).insert(
        [
            ("req-1", time.time(), team["id"], "key_1", "m", "chat", "secrets", "block", {"n": 1}),
            ("req-2", time.time(), None, None, "m", "chat", "pii", "redact", {"n": 2}),
        ]
    )
    db.dispose()
    listed = runner.invoke(
        main, ["guardrails", "audit", "--team", "search", "--config", str(config)]
    )
    assert listed.exit_code == 0, listed.output
    header, row = listed.output.splitlines()
    assert header.split() == [
        "created_at",
        "team",
        "model",
        "rail",
        "action",
        "detail",
        "request_id",
    ]
    assert row.split()[1:] == ["search", "m", "secrets", "block", '{"n":1}', "req-1"]
