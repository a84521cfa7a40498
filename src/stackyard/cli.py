"""The ``stackyard`` command."""

from __future__ import annotations

import datetime as dt
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import orjson

from stackyard import __version__
from stackyard.auth.notify import publish_change
from stackyard.config import ConfigError, StackyardConfig, load
from stackyard.gateway.providers import registry
from stackyard.gateway.providers.http import HttpClient
from stackyard.gateway.service import build_providers
from stackyard.server.app import master_key
from stackyard.store import admin
from stackyard.store.db import Database, default_url

T = TypeVar("T")

CONFIG_HELP = "YAML config file (default: ./stackyard.yaml if present, else the embedded default)."


def _load(config_path: str | None) -> tuple[StackyardConfig, Path | None]:
    try:
        config, file = load(config_path, known_providers=registry.names())
        build_providers(config, HttpClient(), source=str(file or "<embedded default>"))
    except ConfigError as exc:
        click.echo(f"Error: invalid configuration\n{exc}", err=True)
        sys.exit(2)
    return config, file


def _describe(config: StackyardConfig, file: Path | None) -> list[str]:
    lines = list(config.startup_notes)
    if not config.models:
        return lines or ["No models are configured: add some to the config file."]
    for name in config.model_names:
        entries = [m for m in config.models if m.name == name]
        providers = ", ".join(sorted({m.provider for m in entries}))
        plural = "s" if len(entries) > 1 else ""
        fallbacks = config.router.fallbacks.get(name)
        suffix = f"; falls back to {', '.join(fallbacks)}" if fallbacks else ""
        lines.append(f"  {name}: {len(entries)} deployment{plural} ({providers}){suffix}")
    return lines


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="stackyard")
def main() -> None:
    """Stackyard: one OpenAI-compatible gateway for every model your teams use."""


@main.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help=CONFIG_HELP)
@click.option("--host", default=None, help="Address to bind (default 127.0.0.1).")
@click.option("--port", default=None, type=int, help="Port to listen on (default 8000).")
@click.option("--workers", default=None, type=click.IntRange(min=1), help="Worker processes.")
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default=None,
    help="Logging level (default info).",
)
def serve(
    config_path: str | None,
    host: str | None,
    port: int | None,
    workers: int | None,
    log_level: str | None,
) -> None:
    """Start the gateway (OpenAI-compatible API under /v1)."""
    import uvicorn

    config, file = _load(config_path)
    server = config.server
    host = host or server.host
    port = port if port is not None else server.port
    workers = workers or server.workers
    level = log_level or server.log_level
    _refuse_open_outside_loopback(config, file, host)
    os.environ["STACKYARD_CONFIG"] = str(file.resolve()) if file else ""
    source = str(file) if file else "embedded default (no stackyard.yaml)"
    plural = "s" if workers > 1 else ""
    click.echo(f"Stackyard {__version__}: config {source}, {workers} worker{plural}", err=True)
    for line in _describe(config, file):
        click.echo(line, err=True)
    click.echo(f"OpenAI-compatible API: http://{host}:{port}/v1", err=True)
    click.echo(f"Web console: http://{host}:{port}/ui", err=True)
    uvicorn.run(
        "stackyard.server.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop" if _has_uvloop() else "asyncio",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level=level,
        timeout_keep_alive=30,
        server_header=False,
    )


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _database(config: StackyardConfig, file: Path | None) -> Database:
    db = Database(config.database_url or default_url(file))
    db.migrate()
    return db


def _refuse_open_outside_loopback(config: StackyardConfig, file: Path | None, host: str) -> None:
    """With no master key and no virtual key, anyone reaching the port may spend money."""
    if master_key(config):
        return
    db = _database(config, file)
    try:
        has_keys = bool(admin.list_keys(db))
    finally:
        db.dispose()
    if has_keys:
        return
    if host not in LOOPBACK:
        click.echo(
            f"Error: refusing to run open (no master key, no virtual key) on {host}.\n"
            "Set auth.master_key (or STACKYARD_MASTER_KEY) and create keys with "
            "'stackyard keys create', or bind to 127.0.0.1.",
            err=True,
        )
        sys.exit(2)
    click.echo(
        "Running open: no master key and no virtual key, so any local process may call it "
        "(set STACKYARD_MASTER_KEY to require keys).",
        err=True,
    )


def _has_uvloop() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


@main.group()
def config() -> None:
    """Inspect configuration files."""


@config.command("check")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help=CONFIG_HELP)
def config_check(config_path: str | None) -> None:
    """Validate a config file and summarise its models."""
    loaded, file = _load(config_path)
    click.echo(f"{file or 'embedded default'}: valid")
    for line in _describe(loaded, file):
        click.echo(line)


@main.command()
def providers() -> None:
    """List the registered providers."""
    for name in registry.names():
        click.echo(name)


def _table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    """Rows as an aligned table on the terminal."""
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    click.echo("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    for row in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6f}".rstrip("0").rstrip(".") if value else "0"
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value)


def _store(config_path: str | None) -> Database:
    loaded, file = _load(config_path)
    return _database(loaded, file)


def _changed(config_path: str | None) -> None:
    """Tell running instances (through Redis, when configured) to reload their keys now."""
    loaded, _ = _load(config_path)
    publish_change(loaded.redis_url or os.environ.get("STACKYARD_REDIS_URL"))


def since_value(value: str, option: str) -> dt.datetime:
    """A ``--since``-like option's value (7d, 24h, 30m or a date), or a usage error."""
    from stackyard.server.admin import parse_since

    try:
        return parse_since(value)
    except Exception as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


def _models(value: str | None) -> list[str] | None:
    return [m.strip() for m in value.split(",") if m.strip()] if value else None


def _admin_call(action: Callable[[], T]) -> T:
    try:
        return action()
    except admin.AdminError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)


config_option = click.option(
    "--config", "config_path", type=click.Path(dir_okay=False), help=CONFIG_HELP
)


def limit_options(command: Callable[..., None]) -> Callable[..., None]:
    """--rpm, --tpm, --budget and --period, shared by teams and keys."""
    for option in reversed(
        [
            click.option("--rpm", type=click.IntRange(min=1), help="Requests per minute."),
            click.option("--tpm", type=click.IntRange(min=1), help="Tokens per minute."),
            click.option(
                "--budget", type=click.FloatRange(min=0), help="Budget in USD per period."
            ),
            click.option(
                "--period", type=click.Choice(admin.PERIODS), default="month", show_default=True
            ),
            click.option(
                "--soft",
                is_flag=True,
                help="The budget alerts when spent instead of refusing requests.",
            ),
        ]
    ):
        command = option(command)
    return command


def _limits(
    rpm: int | None, tpm: int | None, budget: float | None, period: str, soft: bool = False
) -> dict[str, Any]:
    return {
        "rpm": rpm,
        "tpm": tpm,
        "budget_usd": budget,
        "budget_period": period,
        "budget_soft": soft,
    }


@main.group()
def orgs() -> None:
    """Create and list organisations (a team may belong to one; its limits apply too)."""


@orgs.command("create")
@click.argument("name")
@click.option("--models", help="Comma-separated models its teams may use (default: all).")
@limit_options
@config_option
def orgs_create(
    name: str,
    models: str | None,
    rpm: int | None,
    tpm: int | None,
    budget: float | None,
    period: str,
    soft: bool,
    config_path: str | None,
) -> None:
    """Create an organisation."""
    db = _store(config_path)
    organization = _admin_call(
        lambda: admin.create_organization(
            db, name, models=_models(models), **_limits(rpm, tpm, budget, period, soft)
        )
    )
    _changed(config_path)
    click.echo(f"created organisation {organization['name']} ({organization['id']})")


@orgs.command("list")
@config_option
def orgs_list(config_path: str | None) -> None:
    """List organisations with their limits."""
    rows = admin.list_organizations(_store(config_path))
    _table(rows, ["id", "name", *CONTROLS])


CONTROLS = ["models", "rpm", "tpm", "budget_usd", "budget_period", "budget_soft"]


@main.group()
def teams() -> None:
    """Create and list teams."""


@teams.command("create")
@click.argument("name")
@click.option("--org", help="The organisation (name or id) the team belongs to.")
@click.option("--models", help="Comma-separated models the team may use (default: all).")
@limit_options
@config_option
def teams_create(
    name: str,
    org: str | None,
    models: str | None,
    rpm: int | None,
    tpm: int | None,
    budget: float | None,
    period: str,
    soft: bool,
    config_path: str | None,
) -> None:
    """Create a team."""
    db = _store(config_path)
    team = _admin_call(
        lambda: admin.create_team(
            db,
            name,
            organization=org,
            models=_models(models),
            **_limits(rpm, tpm, budget, period, soft),
        )
    )
    _changed(config_path)
    click.echo(f"created team {team['name']} ({team['id']})")


@teams.command("list")
@config_option
def teams_list(config_path: str | None) -> None:
    """List teams with their limits."""
    rows = admin.list_teams(_store(config_path))
    _table(rows, ["id", "name", "organization_id", *CONTROLS])


@main.group()
def users() -> None:
    """Create and list users (a key may belong to one; their limits apply too)."""


@users.command("create")
@click.argument("email")
@click.option("--team", help="The team (name or id) the user belongs to.")
@click.option("--models", help="Comma-separated models the user may use (default: all).")
@limit_options
@config_option
def users_create(
    email: str,
    team: str | None,
    models: str | None,
    rpm: int | None,
    tpm: int | None,
    budget: float | None,
    period: str,
    soft: bool,
    config_path: str | None,
) -> None:
    """Create a user."""
    db = _store(config_path)
    user = _admin_call(
        lambda: admin.create_user(
            db,
            email,
            team=team,
            models=_models(models),
            **_limits(rpm, tpm, budget, period, soft),
        )
    )
    _changed(config_path)
    click.echo(f"created user {user['email']} ({user['id']})")


@users.command("list")
@config_option
def users_list(config_path: str | None) -> None:
    """List users with their limits."""
    rows = admin.list_users(_store(config_path))
    _table(rows, ["id", "email", "team_id", *CONTROLS])


@main.group()
def keys() -> None:
    """Create, list and revoke virtual keys."""


@keys.command("create")
@click.option("--team", required=True, help="The team (name or id) that owns the key.")
@click.option("--user", help="The user (email or id) the key belongs to, if any.")
@click.option("--name", default="", help="A label for the key.")
@click.option("--models", help="Comma-separated models the key may use (default: the team's).")
@limit_options
@click.option("--expires-in-days", type=click.FloatRange(min=0), help="Expiry, in days.")
@config_option
def keys_create(
    team: str,
    user: str | None,
    name: str,
    models: str | None,
    rpm: int | None,
    tpm: int | None,
    budget: float | None,
    period: str,
    soft: bool,
    expires_in_days: float | None,
    config_path: str | None,
) -> None:
    """Create a key; it is shown once, only its hash is stored."""
    db = _store(config_path)
    created = _admin_call(
        lambda: admin.create_key(
            db,
            team,
            user=user,
            name=name,
            models=_models(models),
            **_limits(rpm, tpm, budget, period, soft),
            expires_in=dt.timedelta(days=expires_in_days) if expires_in_days else None,
        )
    )
    _changed(config_path)
    click.echo(created.key)
    click.echo(
        f"key {created.record['id']} for team {created.record['team']}: store it now, "
        "it is not shown again",
        err=True,
    )


@keys.command("list")
@click.option("--all", "include_revoked", is_flag=True, help="Include revoked keys.")
@config_option
def keys_list(include_revoked: bool, config_path: str | None) -> None:
    """List keys (prefixes only)."""
    rows = admin.list_keys(_store(config_path), include_revoked=include_revoked)
    columns = ["id", "prefix", "team", "name", "models", "rpm", "tpm", "budget_usd", "expires_at"]
    _table(rows, [*columns, "revoked_at"] if include_revoked else columns)


@keys.command("revoke")
@click.argument("key_id")
@config_option
def keys_revoke(key_id: str, config_path: str | None) -> None:
    """Revoke a key (every running instance stops accepting it within a second)."""
    db = _store(config_path)
    _admin_call(lambda: admin.revoke_key(db, key_id))
    _changed(config_path)
    click.echo(f"revoked {key_id}")


@main.command()
@click.option("--by", type=click.Choice(list(admin.GROUPS)), default="team", show_default=True)
@click.option("--since", default="7d", show_default=True, help="7d, 24h, 30m or a date.")
@click.option(
    "--daily",
    is_flag=True,
    help="One line per UTC day and group, from the daily rollup (whole days from --since's).",
)
@config_option
def spend(by: str, since: str, daily: bool, config_path: str | None) -> None:
    """Spend per organisation, team, user, key or model, most expensive first."""
    start = since_value(since, "--since")
    if daily:
        rows = admin.daily_spend(_store(config_path), by=by, since=start.date())
        if not rows:
            click.echo(f"no requests since {start:%Y-%m-%d} UTC")
            return
        most = max(r["cost_usd"] for r in rows) or 1.0
        for row in rows:  # a bar per line: the days worth a look stand out
            row["cost"] = "#" * round(20 * row["cost_usd"] / most)
        _table(
            rows,
            ["day", by, "requests", "errors", "cache_hits", "mean_latency_ms", "cost_usd", "cost"],
        )
    else:
        rows = admin.spend(_store(config_path), by=by, since=start)
        if not rows:
            click.echo(f"no requests since {start:%Y-%m-%d %H:%M} UTC")
            return
        _table(rows, [by, "requests", "prompt_tokens", "completion_tokens", "cost_usd"])
    total = sum(r["cost_usd"] for r in rows)
    click.echo(f"total: ${total:.6f} over {sum(r['requests'] for r in rows)} requests")


@main.group()
def guardrails() -> None:
    """What the guardrails decided."""


@guardrails.command("audit")
@click.option("--team", help="Only this team's requests (name or id).")
@click.option("--since", default="1d", show_default=True, help="7d, 24h, 30m or a date.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@config_option
def guardrails_audit(team: str | None, since: str, limit: int, config_path: str | None) -> None:
    """The guardrails' decisions, newest first: what each rail found and did (never the
    values it found)."""
    start = since_value(since, "--since")
    db = _store(config_path)
    rows = _admin_call(lambda: admin.guardrail_decisions(db, since=start, team=team, limit=limit))
    if not rows:
        click.echo(f"no guardrail decisions since {start:%Y-%m-%d %H:%M} UTC")
        return
    for row in rows:
        row["detail"] = orjson.dumps(row["detail"]).decode()
    _table(rows, ["created_at", "team", "model", "rail", "action", "detail", "request_id"])


def _register_pillars() -> None:
    from stackyard.evals.cli import eval_group
    from stackyard.observability.cli import traces
    from stackyard.prompts.cli import prompts

    main.add_command(traces)
    main.add_command(prompts)
    main.add_command(eval_group)
    from stackyard.finetune.cli import finetune

    main.add_command(finetune)
    try:
        from stackyard.rag.cli import rag as rag_group
    except ImportError:  # the gateway alone installs without the rag extra

        @main.command("rag", context_settings={"ignore_unknown_options": True})
        @click.argument("args", nargs=-1, type=click.UNPROCESSED)
        def rag_group(args: tuple[str, ...]) -> None:
            """Collections for RAG (needs: pip install 'stackyard[rag]')."""
            click.echo(
                "Error: RAG needs the rag extra: pip install 'stackyard[rag]'",
                err=True,
            )
            sys.exit(2)

        return
    main.add_command(rag_group)


_register_pillars()
