"""The ``stackyard`` command."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from stackyard import __version__
from stackyard.config import ConfigError, StackyardConfig, load
from stackyard.config.defaults import embedded_default
from stackyard.gateway.providers import registry
from stackyard.gateway.providers.http import HttpClient
from stackyard.gateway.service import build_providers

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
    lines = embedded_default()[1] if file is None else []
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
    os.environ["STACKYARD_CONFIG"] = str(file.resolve()) if file else ""
    source = str(file) if file else "embedded default (no stackyard.yaml)"
    plural = "s" if workers > 1 else ""
    click.echo(f"Stackyard {__version__}: config {source}, {workers} worker{plural}", err=True)
    for line in _describe(config, file):
        click.echo(line, err=True)
    click.echo(f"OpenAI-compatible API: http://{host}:{port}/v1", err=True)
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
