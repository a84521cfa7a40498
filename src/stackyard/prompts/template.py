"""Rendering a prompt version: ``{{variable}}`` templates by default, a sandboxed Jinja2 for
logic, message placeholders that splice a list of chat messages in, and typed variables
checked before anything is rendered.

Every render is bounded in time and in size (:class:`RenderBound`): a template that loops
without end, or repeats a string into gigabytes, stops with a :class:`RenderError` (a 400
naming the prompt) instead of holding the event loop or the memory. The sandbox checks the
clock on every call, every attribute or item it looks up and every 256 items a loop takes from
a list, a mapping or a range, and refuses a repetition, concatenation or power whose result
would pass the size bound before computing it.
"""

from __future__ import annotations

import collections.abc
import contextvars
import functools
import re
import time
from collections.abc import Iterator
from typing import Any

import jinja2
from jinja2.runtime import Context
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

#: A render's bounds, for all of a version's messages together.
RENDER_SECONDS = 0.25
RENDER_CHARS = 1_000_000


class RenderError(ValueError):
    """A variable is missing, unexpected or of the wrong type, or the template failed."""

    def __init__(self, message: str, variable: str | None = None) -> None:
        super().__init__(message)
        self.variable = variable


class RenderBound:
    """How long a render may take and how much it may write."""

    __slots__ = ("chars", "deadline", "limit", "seconds")

    def __init__(self, seconds: float = RENDER_SECONDS, chars: int = RENDER_CHARS) -> None:
        self.seconds = seconds
        self.limit = chars
        self.chars = chars
        self.deadline = time.monotonic() + seconds

    def tick(self) -> None:
        if time.monotonic() > self.deadline:
            raise RenderError(f"the template took more than {self.seconds:g} s to render")

    def spend(self, count: int) -> None:
        self.chars -= count
        if self.chars < 0:
            raise RenderError(f"the template renders more than {self.limit:,} characters")

    def fits(self, size: int) -> None:
        if size > self.limit:
            raise RenderError(f"the template builds a value of more than {self.limit:,} items")


_BOUND: contextvars.ContextVar[RenderBound | None] = contextvars.ContextVar(
    "stackyard_render_bound", default=None
)


def _bound() -> RenderBound:
    bound = _BOUND.get()
    if bound is None:  # a template rendered outside render_text: bounded all the same
        bound = RenderBound()
        _BOUND.set(bound)
    return bound


class _Ticking:
    """An iterable that checks the clock every 256 items it gives (lists, mappings and ranges
    as a template loops over them); lengths and indexing pass through."""

    __slots__ = ("_items",)

    def __init__(self, items: Any) -> None:
        self._items = items

    def __iter__(self) -> Iterator[Any]:
        bound = _bound()
        for index, item in enumerate(self._items):
            if not index & 255:
                bound.tick()
            yield _ticking(item)

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, key: Any) -> Any:
        return _ticking(self._items[key])

    def __contains__(self, item: Any) -> bool:
        return item in self._items

    def __str__(self) -> str:
        return str(self._items)

    def __repr__(self) -> str:
        return repr(self._items)

    def __eq__(self, other: object) -> bool:
        return bool(self._items == (other._items if isinstance(other, _Ticking) else other))

    __hash__ = None  # type: ignore[assignment]

    def __bool__(self) -> bool:
        return bool(self._items)


class _TickingMapping(_Ticking):
    """A mapping seen by a template: its keys, values and items tick as a list's do."""

    __slots__ = ()

    def keys(self) -> _Ticking:
        return _Ticking(self._items.keys())

    def values(self) -> _Ticking:
        return _Ticking(self._items.values())

    def items(self) -> _Ticking:
        return _Ticking(self._items.items())

    def get(self, key: Any, default: Any = None) -> Any:
        return _ticking(self._items.get(key, default))


def _ticking(value: Any) -> Any:
    kind = type(value)
    if kind is list or kind is tuple or kind is range:
        return _Ticking(value)
    if kind is dict:
        return _TickingMapping(value)
    return value


def _size(value: Any) -> int | None:
    return len(value) if isinstance(value, str | bytes | list | tuple | _Ticking) else None


class _BoundedSandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, bounded in time and size (see the module's docstring)."""

    intercepted_binops = frozenset({"*", "**", "+"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        bound = _bound()
        bound.tick()
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                size = _size(seq)
                if size is not None and isinstance(times, int):
                    bound.fits(size * times)
        elif operator == "+":
            a, b = _size(left), _size(right)
            if a is not None and b is not None:
                bound.fits(a + b)
        elif (
            operator == "**"
            and isinstance(left, int)
            and isinstance(right, int)
            and right > 0
            and abs(left) > 1
            and left.bit_length() * right > 64 * bound.limit
        ):
            raise RenderError("the template computes a number too large to render")
        if isinstance(left, _Ticking):
            left = left._items
        if isinstance(right, _Ticking):
            right = right._items
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _bound().tick()
        return _ticking(super().call(__context, __obj, *args, **kwargs))

    def getattr(self, obj: Any, attribute: str) -> Any:
        _bound().tick()
        if isinstance(obj, _Ticking) and not isinstance(obj, _TickingMapping):
            obj = obj._items
        return _ticking(super().getattr(obj, attribute))

    def getitem(self, obj: Any, argument: Any) -> Any:
        _bound().tick()
        if isinstance(obj, _Ticking):
            obj = obj._items
        return _ticking(super().getitem(obj, argument))


collections.abc.Sequence.register(_Ticking)  # ``is sequence`` and ``is mapping`` hold as for
collections.abc.Mapping.register(_TickingMapping)  # the plain values they stand for


def _plain_json(value: Any) -> Any:
    if isinstance(value, _Ticking):
        items = value._items
        return dict(items) if isinstance(items, dict) else list(items)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


#: No loader: a template cannot include, import or read anything. Immutable and sandboxed:
#: no attribute access to internals (``__class__``, ``__globals__``...), no mutation.
_JINJA = _BoundedSandbox(
    loader=None, autoescape=False, undefined=jinja2.StrictUndefined, keep_trailing_newline=True
)
_JINJA.policies["json.dumps_kwargs"] = {"sort_keys": True, "default": _plain_json}


@functools.lru_cache(maxsize=256)
def _compiled(source: str) -> jinja2.Template:
    return _JINJA.from_string(source)


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


def render_text(
    template: str, values: dict[str, Any], engine: str, bound: RenderBound | None = None
) -> str:
    """``template`` rendered with ``values``, within ``bound`` (a fresh one if not given)."""
    bound = bound or RenderBound()
    if engine == "jinja":
        return _render_jinja(template, values, bound)

    def substitute(match: re.Match[str]) -> str:
        value = values.get(match[1])
        if value is None and match[1] not in values:
            raise RenderError(f"the template uses '{match[1]}', which is not a variable", match[1])
        text = value if isinstance(value, str) else _plain(value)
        bound.spend(len(text))
        return text

    bound.spend(len(template))
    return MUSTACHE.sub(substitute, template)


def _render_jinja(template: str, values: dict[str, Any], bound: RenderBound) -> str:
    token = _BOUND.set(bound)
    try:
        out: list[str] = []
        for chunk in _compiled(template).generate(**{k: _ticking(v) for k, v in values.items()}):
            bound.spend(len(chunk))
            bound.tick()
            out.append(chunk)
        return "".join(out)
    except RenderError:
        raise
    except jinja2.exceptions.SecurityError as exc:
        raise RenderError(f"the template tried something unsafe: {exc}") from None
    except jinja2.exceptions.UndefinedError as exc:
        raise RenderError(f"the template failed: {exc}") from None
    except RecursionError:
        raise RenderError("the template failed: it calls itself too deeply") from None
    except MemoryError:
        raise RenderError("the template failed: it needs too much memory") from None
    except Exception as exc:
        # ``include``/``import`` (no loader: a TypeError), bad arithmetic, and the like.
        raise RenderError(f"the template failed: {type(exc).__name__}: {exc}") from None
    finally:
        _BOUND.reset(token)


def _plain(value: Any) -> str:
    import orjson

    if isinstance(value, bool | int | float):
        return str(value).lower() if isinstance(value, bool) else str(value)
    return orjson.dumps(value).decode()


def render_messages(
    messages: list[dict[str, Any]],
    values: dict[str, Any],
    engine: str,
    bound: RenderBound | None = None,
) -> list[dict[str, Any]]:
    """Chat messages with their text rendered and each placeholder
    (``{"type": "placeholder", "name": "history"}``) replaced by that variable's messages, all
    within one ``bound``."""
    bound = bound or RenderBound()
    out: list[dict[str, Any]] = []
    for message in messages:
        if message.get("type") == "placeholder":
            name = str(message.get("name"))
            out.extend(values.get(name) or [])
            continue
        content = message.get("content")
        if isinstance(content, str):
            message = {**message, "content": render_text(content, values, engine, bound)}
        elif isinstance(content, list):
            parts = [
                {**part, "text": render_text(part["text"], values, engine, bound)}
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
