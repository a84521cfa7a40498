"""Output validation: an answer asked for as JSON (``response_format`` ``json_object`` or
``json_schema``; on Anthropic's Messages API, ``output_config.format``) must parse, and match
the schema. An answer that does not can be repaired
(code fences, prose around the JSON, trailing commas, Python literals), or the model asked
again once with the error; then the client gets a clear error rather than a broken answer."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

#: Markdown code fences around an answer: ```json ... ```.
FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)\n?```", re.DOTALL)
TRAILING_COMMA = re.compile(r",(\s*[}\]])")
PYTHON_LITERALS = re.compile(r"\b(True|False|None)\b")


@dataclass(frozen=True, slots=True)
class Expected:
    """What a request asked for: any JSON object, or JSON matching a schema."""

    schema: dict[str, Any] | None = None
    name: str | None = None
    #: The request parameter that asked (errors name it).
    param: str = "response_format"


def expected(body: dict[str, Any]) -> Expected | None:
    """What the request's ``response_format`` asks for (None: text, nothing to check)."""
    spec = body.get("response_format")
    if not isinstance(spec, dict):
        return None
    if spec.get("type") == "json_object":
        return Expected()
    if spec.get("type") == "json_schema":
        inner = spec.get("json_schema") or {}
        schema = inner.get("schema") if isinstance(inner, dict) else None
        return Expected(schema if isinstance(schema, dict) else None, inner.get("name"))
    return None


def expected_messages(body: dict[str, Any]) -> Expected | None:
    """What a Messages request's ``output_config.format`` (or the beta's top-level
    ``output_format``) asks for (None: text)."""
    config = body.get("output_config")
    spec = config.get("format") if isinstance(config, dict) else None
    param = "output_config.format"
    if spec is None:
        spec, param = body.get("output_format"), "output_format"
    if not isinstance(spec, dict) or spec.get("type") != "json_schema":
        return None
    schema = spec.get("schema")
    return Expected(schema if isinstance(schema, dict) else None, None, param)


def problem(text: str, wanted: Expected) -> str | None:
    """Why ``text`` is not what was asked for, in a sentence; None when it is."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        return f"the answer is not valid JSON ({exc})"
    if wanted.schema is None:
        return None if isinstance(value, dict) else "the answer is JSON but not an object"
    import jsonschema

    validator_class = jsonschema.validators.validator_for(wanted.schema)
    errors = sorted(validator_class(wanted.schema).iter_errors(value), key=lambda e: e.path)
    if not errors:
        return None
    first = errors[0]
    where = "/".join(str(part) for part in first.absolute_path) or "(the root)"
    return f"the answer does not match the schema at {where}: {first.message}"


def _candidates(text: str) -> list[str]:
    """Texts the JSON may be hiding in, most likely first."""
    found = [m.group(1).strip() for m in FENCE.finditer(text)]
    for opener, closer in (("{", "}"), ("[", "]")):
        start, end = text.find(opener), text.rfind(closer)
        if start != -1 and end > start:
            found.append(text[start : end + 1])
    return found


def repair(text: str, wanted: Expected) -> str | None:
    """The answer made valid by a cheap, local fix, or None if none works. Only fixes that
    keep the model's values are tried: nothing is invented."""
    for candidate in _candidates(text):
        for fixed in (
            candidate,
            TRAILING_COMMA.sub(r"\1", candidate),
            PYTHON_LITERALS.sub(
                lambda m: {"True": "true", "False": "false", "None": "null"}[m[0]],
                TRAILING_COMMA.sub(r"\1", candidate),
            ),
        ):
            if problem(fixed, wanted) is None:
                return fixed
    return None


def reask_text(why: str) -> str:
    """What the model is told when its answer is asked for again."""
    return (
        f"That answer cannot be used: {why}. Answer again with only the JSON, "
        "nothing before or after it."
    )


def reask_messages(messages: list[dict[str, Any]], answer: str, why: str) -> list[dict[str, Any]]:
    """The conversation again, with the invalid answer and what was wrong with it."""
    return [
        *messages,
        {"role": "assistant", "content": answer},
        {"role": "user", "content": reask_text(why)},
    ]
