"""What the CLI's commands share: loading the config, the store, tables on the terminal, option
parsing; the pillars' own commands (``prompts``, ``rag``, ``traces``, ``eval``, ``finetune``)
import these too."""

from __future__ import annotations

import datetime as dt
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from stackyard.auth.notify import publish_change
from stackyard.config import ConfigError, StackyardConfig, load
from stackyard.gateway.providers import registry
from stackyard.gateway.providers.http import HttpClient
from stackyard.gateway.service import Gateway, build_providers
from stackyard.store import admin
from stackyard.store.db import Database, default_url

if TYPE_CHECKING:
    from stackyard.gateway.rag_models import RouterModels

T = TypeVar("T")

CONFIG_HELP = "YAML config file (default: ./stackyard.yaml if present, else the embedded default)."


def load_config(config_path: str | None) -> tuple[StackyardConfig, Path | None]:
    try:
        config, file = load(config_path, known_providers=registry.names())
        build_providers(config, HttpClient(), source=str(file or "<embedded default>"))
    except ConfigError as exc:
        click.echo(f"Error: invalid configuration\n{exc}", err=True)
        sys.exit(2)
    return config, file


def database(config: StackyardConfig, file: Path | None) -> Database:
    db = Database(config.database_url or default_url(file))
    db.migrate()
    return db


def rag_models(
    config: StackyardConfig, file: Path | None
) -> tuple[RouterModels, Callable[[], Awaitable[None]]]:
    """The config's models as RAG calls them (through a gateway built here), and what closes
    them."""
    from stackyard.gateway.rag_models import RouterModels

    gateway = Gateway(config, source=str(file or "<embedded default>"))
    return RouterModels(gateway.router), gateway.aclose


def table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    """Rows as an aligned table on the terminal."""
    cells = [[cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    click.echo("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    for row in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))


def cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6f}".rstrip("0").rstrip(".") if value else "0"
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value)


def store(config_path: str | None) -> Database:
    loaded, file = load_config(config_path)
    return database(loaded, file)


def changed(config_path: str | None) -> None:
    """Tell running instances (through Redis, when configured) to reload their keys now."""
    loaded, _ = load_config(config_path)
    publish_change(loaded.redis_url or os.environ.get("STACKYARD_REDIS_URL"))


def since_value(value: str, option: str) -> dt.datetime:
    """A ``--since``-like option's value (7d, 24h, 30m or a date), or a usage error."""
    from stackyard.server.admin import parse_since

    try:
        return parse_since(value)
    except Exception as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


def model_list(value: str | None) -> list[str] | None:
    return [m.strip() for m in value.split(",") if m.strip()] if value else None


def admin_call(action: Callable[[], T]) -> T:
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


def limits(
    rpm: int | None, tpm: int | None, budget: float | None, period: str, soft: bool = False
) -> dict[str, Any]:
    return {
        "rpm": rpm,
        "tpm": tpm,
        "budget_usd": budget,
        "budget_period": period,
        "budget_soft": soft,
    }
