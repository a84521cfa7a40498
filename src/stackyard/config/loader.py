"""Reading, interpolating and validating a configuration file.

Errors name the file, the line, the field's path and what was expected, for example::

    stackyard.yaml:4: models[0].provider: unknown provider 'opnai' (known: openai, ...)
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml
from pydantic import ValidationError

from stackyard.config.defaults import embedded_default, embedded_models
from stackyard.config.interpolate import MissingVariableError, interpolate
from stackyard.config.schema import StackyardConfig

DEFAULT_CONFIG_FILE = "stackyard.yaml"


class _Loader(yaml.SafeLoader):
    """YAML as version 1.2 reads booleans: only true and false. YAML 1.1 (PyYAML's default)
    reads ``off``, ``on``, ``yes``, ``no`` as booleans, so the docs' ``action: off`` arrived as
    ``false`` and was refused; a boolean field still takes them (pydantic reads "off")."""


_BOOL = "tag:yaml.org,2002:bool"
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)

Path_ = tuple[str | int, ...]


class ConfigError(Exception):
    """A configuration file is missing, unreadable or invalid. ``str()`` is user-facing."""


def format_path(path: Sequence[str | int]) -> str:
    """``("models", 0, "provider")`` -> ``models[0].provider``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


class _Located:
    """Maps a field path to the line it was written on, from the YAML node tree."""

    def __init__(self, root: yaml.Node | None) -> None:
        self._root = root

    def line(self, path: Sequence[str | int]) -> int | None:
        node = self._root
        best: int | None = node.start_mark.line + 1 if node is not None else None
        for part in path:
            if node is None:
                break
            child: yaml.Node | None = None
            if isinstance(node, yaml.MappingNode) and isinstance(part, str):
                for key, value in node.value:
                    if getattr(key, "value", None) == part:
                        child = value
                        best = key.start_mark.line + 1
                        break
            elif (
                isinstance(node, yaml.SequenceNode)
                and isinstance(part, int)
                and 0 <= part < len(node.value)
            ):
                child = node.value[part]
                best = child.start_mark.line + 1
            node = child
        return best


def _interpolate_tree(value: object, env: Mapping[str, str], path: Path_) -> object:
    if isinstance(value, str):
        try:
            return interpolate(value, env)
        except MissingVariableError as exc:
            raise _FieldError(
                path, f"environment variable ${{{exc.name}}} is not set (and no default given)"
            ) from None
    if isinstance(value, dict):
        return {k: _interpolate_tree(v, env, (*path, str(k))) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate_tree(v, env, (*path, i)) for i, v in enumerate(value)]
    return value


class _FieldError(Exception):
    def __init__(self, path: Path_, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


def _describe(error: Mapping[str, object]) -> str:
    kind = str(error.get("type", ""))
    message = str(error.get("msg", "invalid value"))
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "required field is missing"
    if kind == "value_error":
        message = message.removeprefix("Value error, ")
    got = error.get("input")
    if kind not in ("missing", "extra_forbidden") and not isinstance(got, dict | list):
        return f"{message} (got {got!r})"
    return message


def validate(
    data: object,
    *,
    source: str = "<config>",
    env: Mapping[str, str] | None = None,
    node: yaml.Node | None = None,
    known_providers: Sequence[str] | None = None,
) -> StackyardConfig:
    """Validate already-parsed YAML data. ``known_providers`` checks each model's provider."""
    located = _Located(node)

    def fail(path: Path_, message: str) -> ConfigError:
        line = located.line(path)
        where = f"{source}:{line}" if line else source
        return ConfigError(f"{where}: {format_path(path)}: {message}")

    if data is None:
        data = {}
    if not isinstance(data, dict):
        return_type = type(data).__name__
        raise ConfigError(f"{source}: expected a mapping at the top level (got {return_type})")
    try:
        data = _interpolate_tree(data, os.environ if env is None else env, ())
    except _FieldError as exc:
        raise fail(exc.path, exc.message) from None
    assert isinstance(data, dict)  # interpolation keeps the structure
    notes: list[str] = []
    if "models" not in data:  # nothing said about models: the embedded default's
        models, notes = embedded_models()
        if not notes:
            notes = [
                f"{source} lists no models: serving the embedded default's in-process models "
                "(write `models: []` for none)."
            ]
        data = {**data, "models": models}
    try:
        config = StackyardConfig.model_validate(data)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            loc: Path_ = tuple(error["loc"])
            message = _describe(error)
            if not loc and message.startswith(("router.fallbacks.", "models.")):
                head, _, message = message.partition(": ")
                loc = tuple(int(p) if p.isdigit() else p for p in head.split("."))
            lines.append(str(fail(loc, message)))
        raise ConfigError("\n".join(lines)) from None
    if known_providers is not None:
        for index, entry in enumerate(config.models):
            if entry.provider not in known_providers:
                known = ", ".join(sorted(known_providers))
                raise fail(
                    ("models", index, "provider"),
                    f"unknown provider '{entry.provider}' (known: {known})",
                )
    return config.noted(notes)


def load(
    path: str | os.PathLike[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    known_providers: Sequence[str] | None = None,
) -> tuple[StackyardConfig, Path | None]:
    """Load a config file. With ``path=None``, ``./stackyard.yaml`` if present, else defaults.

    Returns the configuration and the file it came from (``None`` for the embedded default).
    """
    if path is None:
        candidate = Path(DEFAULT_CONFIG_FILE)
        if not candidate.exists():
            return embedded_default()[0], None
        path = candidate
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{file}: no such file") from None
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read: {exc.strerror}") from None
    try:
        node = yaml.compose(text, Loader=_Loader)
        data = yaml.load(text, Loader=_Loader)  # a SafeLoader: no Python objects
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{file}:{mark.line + 1}" if mark is not None else str(file)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}: invalid YAML: {problem}") from None
    config = validate(data, source=str(file), env=env, node=node, known_providers=known_providers)
    return config, file
