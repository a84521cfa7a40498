"""The ``stackyard`` command: ``serve``, ``config check``, ``providers``, and every other group,
registered in one place (:func:`register`)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from stackyard import __version__
from stackyard.cli.common import CONFIG_HELP, database, load_config
from stackyard.config import StackyardConfig
from stackyard.gateway.providers import registry
from stackyard.observability import metrics, metrics_files
from stackyard.server.app import master_key
from stackyard.store import admin


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

    config, file = load_config(config_path)
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
    # Several workers share their metrics through files in a directory of this start's own
    # (set before uvicorn spawns them); one keeps them in the process, which is cheaper.
    metrics_dir = None
    if workers > 1:
        metrics_dir = metrics_files.fresh(file.resolve().parent if file else Path.cwd())
    metrics.use_directory(str(metrics_dir) if metrics_dir else None)
    try:
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
    finally:
        if metrics_dir is not None:
            metrics_files.remove(metrics_dir)


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _refuse_open_outside_loopback(config: StackyardConfig, file: Path | None, host: str) -> None:
    """With no master key and no virtual key, anyone reaching the port may spend money."""
    if master_key(config):
        return
    db = database(config, file)
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
    loaded, file = load_config(config_path)
    click.echo(f"{file or 'embedded default'}: valid")
    for line in _describe(loaded, file):
        click.echo(line)


@main.command()
def providers() -> None:
    """List the registered providers."""
    for name in registry.names():
        click.echo(name)


def register() -> None:
    """Every command group, in one place."""
    from stackyard.cache.cli import cache_group
    from stackyard.cli.admin import guardrails, keys, orgs, spend, teams, users
    from stackyard.evals.cli import eval_group
    from stackyard.observability.cli import traces
    from stackyard.prompts.cli import prompts

    for command in (orgs, teams, users, keys, spend, guardrails):
        main.add_command(command)
    main.add_command(traces)
    main.add_command(cache_group)
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


register()
