"""``${ENV_VAR}`` interpolation in configuration values.

``${NAME}`` is replaced by the environment variable's value; ``${NAME:-default}`` falls back to
``default`` when the variable is unset or empty; ``$${`` writes a literal ``${``. Only string
values are interpolated, after YAML parsing, so a secret can never change the file's structure.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_PATTERN = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class MissingVariableError(KeyError):
    """An interpolated variable is not set and has no default."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Return ``value`` with every ``${VAR}`` replaced from ``env``."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:  # the "$${" escape
            return "${"
        found = env.get(name)
        if found:
            return found
        default = match.group(2)
        if default is not None:
            return default
        if found is not None:  # set but empty, no default: keep the empty value
            return found
        raise MissingVariableError(name)

    return _PATTERN.sub(replace, value) if "${" in value else value
