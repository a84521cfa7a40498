"""``stackyard prompts``: push prompt files, list, show, diff, label and roll back, against the
store of the config given (every instance sees a change within a second)."""

from __future__ import annotations

import getpass
import json
import sys
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from stackyard.prompts import registry
from stackyard.prompts.model import REFERENCE, PushRequest, describe_error, read_prompt_file
from stackyard.store.db import Database

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="YAML config file (default: ./stackyard.yaml if present, else the embedded default).",
)


def _actor() -> registry.Actor:
    """The CLI works on the store directly, as an administrator would."""
    try:
        label = f"cli:{getpass.getuser()}"
    except Exception:
        label = "cli"
    return registry.Actor(label, admin=True)


def _store(config_path: str | None) -> Database:
    from stackyard.cli.common import store

    return store(config_path)


def _changed(config_path: str | None) -> None:
    from stackyard.cli.common import changed

    changed(config_path)


def _run(action: Any) -> Any:
    try:
        return action()
    except registry.RegistryError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1 if exc.status == 404 else 2)


@click.group()
def prompts() -> None:
    """Version, release and roll back prompts."""


@prompts.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("-m", "--message", help="A commit message for the new versions.")
@click.option("--label", "labels", multiple=True, help="Point this label at the pushed version.")
@config_option
def push(
    files: tuple[Path, ...], message: str | None, labels: tuple[str, ...], config_path: str | None
) -> None:
    """Push prompt files (YAML, or Markdown with front matter) or folders of them. Identical
    content makes no new version."""
    paths = [
        p
        for f in files
        for p in (
            sorted(x for x in f.rglob("*") if x.suffix in (".yaml", ".yml", ".md"))
            if f.is_dir()
            else [f]
        )
    ]
    db = _store(config_path)
    for path in paths:
        try:
            data = read_prompt_file(path)
            if message and "message" not in data:
                data["message"] = message
            data["labels"] = [*data.get("labels", []), *labels]
            request = PushRequest.model_validate(data)
        except ValidationError as exc:
            click.echo(f"Error: {path}: {describe_error(exc)}", err=True)
            sys.exit(2)
        except ValueError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(2)
        version, created = _run(lambda r=request: registry.push(db, r, _actor()))
        state = "new version" if created else "unchanged, still version"
        where = f" -> {', '.join(request.labels)}" if request.labels else ""
        click.echo(f"{request.name}: {state} {version['version']}{where}")
    _changed(config_path)


@prompts.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--label",
    default="production",
    show_default=True,
    help="Write the version behind this label (a prompt without it: its latest version).",
)
@config_option
def pull(folder: Path, label: str, config_path: str | None) -> None:
    """Write every prompt to FOLDER as NAME.yaml, ready to edit and push back (pushing an
    unchanged file makes no new version)."""
    import yaml

    db = _store(config_path)
    folder.mkdir(parents=True, exist_ok=True)
    for row in registry.list_prompts(db):
        name = row["name"]
        chosen = label if label in row["labels"] else None
        version = _run(lambda n=name, c=chosen: registry.get_version(db, n, None, c))
        content = {"name": name}
        content.update(
            {
                key: version[key]
                for key in ("template", "messages", "variables", "engine", "config")
                if version.get(key) not in (None, {}, [])
            }
        )
        if content.get("engine") == "mustache":
            del content["engine"]
        (folder / f"{name}.yaml").write_text(
            yaml.safe_dump(content, sort_keys=False, allow_unicode=True)
        )
        where = f":{label}" if chosen else " (latest)"
        click.echo(f"{name}{where} -> version {version['version']}")


@prompts.command("list")
@config_option
def list_command(config_path: str | None) -> None:
    """Every prompt, its latest version and its labels."""
    from stackyard.cli.common import table as _table

    rows = registry.list_prompts(_store(config_path))
    if not rows:
        click.echo("no prompts yet: stackyard prompts push FILE")
        return
    for row in rows:
        row["labels"] = [
            f"{label}={'/'.join(str(t['version']) for t in targets)}"
            for label, targets in sorted(row["labels"].items())
        ]
    _table(rows, ["name", "latest_version", "labels", "updated_at"])


@prompts.command()
@click.argument("reference")
@click.option("--json", "as_json", is_flag=True, help="The version as JSON.")
@config_option
def show(reference: str, as_json: bool, config_path: str | None) -> None:
    """Show NAME (latest), NAME@VERSION or NAME:LABEL."""
    match = REFERENCE.match(reference)
    if match is None:
        raise click.BadParameter("expected NAME, NAME@VERSION or NAME:LABEL")
    version = match["version"]
    number = int(version) if version and version != "latest" else None
    db = _store(config_path)
    found = _run(lambda: registry.get_version(db, match["name"], number, match["label"]))
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    click.echo(f"{found['name']} version {found['version']} ({found['type']}, {found['engine']})")
    click.echo(f"  by {found['author']} at {found['created_at']}: {found['message'] or '-'}")
    if found["variables"]:
        click.echo(f"  variables: {json.dumps(found['variables'])}")
    if found["config"]:
        click.echo(f"  config: {json.dumps(found['config'])}")
    click.echo("")
    if found["type"] == "text":
        click.echo(found["template"])
    else:
        for message in found["messages"]:
            if message.get("type") == "placeholder":
                click.echo(f"[placeholder: {message.get('name')}]")
            else:
                click.echo(f"[{message.get('role')}] {message.get('content')}")


@prompts.command()
@click.argument("name")
@click.argument("old", type=int)
@click.argument("new", type=int)
@config_option
def diff(name: str, old: int, new: int, config_path: str | None) -> None:
    """What changed between two versions."""
    db = _store(config_path)
    changes = _run(lambda: registry.diff(db, name, old, new))
    for line in changes["text"]:
        color = "green" if line.startswith("+") else "red" if line.startswith("-") else None
        click.secho(line, fg=color)
    for field, change in changes["changes"].items():
        click.echo(f"{field}: {json.dumps(change['from'])} -> {json.dumps(change['to'])}")
    if not changes["text"] and not changes["changes"]:
        click.echo("no differences")


@prompts.group()
def label() -> None:
    """Move labels (a release)."""


@label.command("set")
@click.argument("name")
@click.argument("version", type=int)
@click.argument("label_name", metavar="LABEL")
@config_option
def label_set(name: str, version: int, label_name: str, config_path: str | None) -> None:
    """Point LABEL of NAME at VERSION."""
    db = _store(config_path)
    _run(lambda: registry.set_label(db, name, label_name, version=version, actor=_actor()))
    _changed(config_path)
    click.echo(f"{name}:{label_name} -> version {version}")


@prompts.command()
@click.argument("name")
@click.argument("label_name", metavar="LABEL")
@config_option
def rollback(name: str, label_name: str, config_path: str | None) -> None:
    """Move LABEL back to where it pointed before its last move."""
    db = _store(config_path)
    row = _run(lambda: registry.rollback(db, name, label_name, actor=_actor()))
    _changed(config_path)
    versions = "/".join(str(t["version"]) for t in row["targets"])
    click.echo(f"{name}:{label_name} -> version {versions}")


@prompts.command()
@click.argument("name")
@config_option
def audit(name: str, config_path: str | None) -> None:
    """Every push and label move of NAME: who, when, from, to."""
    from stackyard.cli.common import table as _table

    rows = _run(lambda: registry.audit_log(_store(config_path), name))
    _table(rows, ["at", "action", "label", "from", "to", "actor"])
