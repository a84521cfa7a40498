"""Rendering a prompt version: ``{{variable}}`` templates by default, a sandboxed Jinja2 for
logic, message placeholders that splice a list of chat messages in, and typed variables
checked before anything is rendered."""

from __future__ import annotations

import re
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

#: ``{{ name }}``: a variable, nothing else (no logic in the default syntax).
MUSTACHE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")

TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
    "messages": (list,),
}

#: No loader: a template cannot include, import or read anything. Immutable and sandboxed:
#: no attribute access to internals (``__class__``, ``__globals__``...), no mutation.
_JINJA = ImmutableSandboxedEnvironment(
    loader=None, autoescape=False, undefined=jinja2.StrictUndefined, keep_trailing_newline=True
)


class RenderError(ValueError):
    """A variable is missing, unexpected or of the wrong type, or the template failed."""

    def __init__(self, message: str, variable: str | None = None) -> None:
        super().__init__(message)
        self.variable = variable


def check_variables(schema: dict[str, dict[str, Any]], given: dict[str, Any]) -> dict[str, Any]:
    """The variables to render with: defaults filled in; raises for a missing, extra or
    mistyped variable."""
    extra = sorted(set(given) - set(schema))
    if extra:
        known = ", ".join(sorted(schema)) or "none"
        message = f"unexpected variable '{extra[0]}' (this prompt takes: {known})"
        raise RenderError(message, extra[0])
    values: dict[str, Any] = {}
    for name, spec in schema.items():
        if name in given:
            value = given[name]
        elif "default" in spec:
            value = spec["default"]
        elif spec.get("required", True):
            raise RenderError(f"missing variable '{name}'", name)
        else:
            continue
        kind = spec.get("type", "string")
        allowed = TYPES.get(kind)
        wrong_bool = isinstance(value, bool) and kind in ("number", "integer")
        if allowed is not None and (not isinstance(value, allowed) or wrong_bool):
            raise RenderError(
                f"variable '{name}' must be {_article(kind)} {kind}, not {type(value).__name__}",
                name,
            )
        if kind == "messages" and not all(
            isinstance(m, dict) and isinstance(m.get("role"), str) for m in value
        ):
            raise RenderError(
                f"variable '{name}' must be a list of chat messages with a 'role'", name
            )
        values[name] = value
    return values


def _article(kind: str) -> str:
    return "an" if kind[0] in "aeiou" else "a"


def render_text(template: str, values: dict[str, Any], engine: str) -> str:
    if engine == "jinja":
        try:
            return _JINJA.from_string(template).render(**values)
        except jinja2.exceptions.SecurityError as exc:
            raise RenderError(f"the template tried something unsafe: {exc}") from None
        except jinja2.exceptions.UndefinedError as exc:
            raise RenderError(f"the template failed: {exc}") from None
        except (jinja2.exceptions.TemplateError, TypeError, ValueError, ArithmeticError) as exc:
            # ``include``/``import`` (no loader: a TypeError), bad arithmetic, and the like.
            raise RenderError(f"the template failed: {exc}") from None

    def substitute(match: re.Match[str]) -> str:
        value = values.get(match[1])
        if value is None and match[1] not in values:
            raise RenderError(f"the template uses '{match[1]}', which is not a variable", match[1])
        return value if isinstance(value, str) else _plain(value)

    return MUSTACHE.sub(substitute, template)


def _plain(value: Any) -> str:
    import orjson

    if isinstance(value, bool | int | float):
        return str(value).lower() if isinstance(value, bool) else str(value)
    return orjson.dumps(value).decode()


def render_messages(
    messages: list[dict[str, Any]], values: dict[str, Any], engine: str
) -> list[dict[str, Any]]:
    """Chat messages with their text rendered and each placeholder
    (``{"type": "placeholder", "name": "history"}``) replaced by that variable's messages."""
    out: list[dict[str, Any]] = []
    for message in messages:
        if message.get("type") == "placeholder":
            name = str(message.get("name"))
            out.extend(values.get(name) or [])
            continue
        content = message.get("content")
        if isinstance(content, str):
            message = {**message, "content": render_text(content, values, engine)}
        elif isinstance(content, list):
            parts = [
                {**part, "text": render_text(part["text"], values, engine)}
                if isinstance(part, dict) and isinstance(part.get("text"), str)
                else part
                for part in content
            ]
            message = {**message, "content": parts}
        out.append(message)
    return out


def template_variables(text: str) -> set[str]:
    """The variables a ``{{variable}}`` template uses (for a helpful check at push time)."""
    return {m[1] for m in MUSTACHE.finditer(text)}
