"""Scorers on structure: JSON validity, a JSON Schema, numeric closeness."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from stackyard.evals.dataset import Item
from stackyard.evals.scorers.base import Judge, Score, expected_text

TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


def _json(output: str) -> Any:
    """The output as JSON, also when fenced in a Markdown code block."""
    text = output.strip()
    fenced = re.match(r"^```(?:json)?\s*\n(.*?)\n```$", text, re.S)
    return json.loads(fenced[1] if fenced else text)


def schema_errors(value: Any, schema: dict[str, Any], where: str = "$") -> list[str]:
    """The common JSON Schema keywords: type, enum, const, properties, required,
    additionalProperties (false), items, minItems, maxItems, minimum, maximum, minLength,
    maxLength, pattern."""
    errors: list[str] = []
    kind = schema.get("type")
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        ok = any(
            isinstance(value, TYPES.get(k, ()))
            and not (isinstance(value, bool) and k in ("integer", "number"))
            for k in kinds
        )
        if not ok:
            return [f"{where}: expected {'/'.join(kinds)}, got {type(value).__name__}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where}: not one of {schema['enum']}")
    if "const" in schema and value != schema["const"]:
        errors.append(f"{where}: expected {schema['const']!r}")
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                errors.append(f"{where}: missing '{name}'")
        for name, item in value.items():
            if name in properties:
                errors += schema_errors(item, properties[name], f"{where}.{name}")
            elif schema.get("additionalProperties") is False:
                errors.append(f"{where}: unexpected '{name}'")
    if isinstance(value, list):
        if "items" in schema:
            for index, item in enumerate(value):
                errors += schema_errors(item, schema["items"], f"{where}[{index}]")
        if len(value) < schema.get("minItems", 0):
            errors.append(f"{where}: fewer than {schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            errors.append(f"{where}: more than {schema['maxItems']} items")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{where}: below {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{where}: above {schema['maximum']}")
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            errors.append(f"{where}: shorter than {schema['minLength']}")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            errors.append(f"{where}: longer than {schema['maxLength']}")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errors.append(f"{where}: does not match {schema['pattern']}")
    return errors


@dataclass
class JsonValid:
    name: str = "json_valid"
    threshold: float | None = None

    async def score(self, output: str, item: Item, judge: Judge) -> Score:
        try:
            _json(output)
        except ValueError as exc:
            return Score(0.0, f"not JSON: {exc}")
        return Score(1.0)


@dataclass
class JsonSchema:
    schema: dict[str, Any] = field(default_factory=dict)
    name: str = "json_schema"
    threshold: float | None = None

    async def score(self, output: str, item: Item, judge: Judge) -> Score:
        try:
            value = _json(output)
        except ValueError as exc:
            return Score(0.0, f"not JSON: {exc}")
        errors = schema_errors(value, self.schema)
        return Score(0.0 if errors else 1.0, "; ".join(errors[:3]))


@dataclass
class Numeric:
    """The first number in the output is within ``tolerance`` (relative) of the expected."""

    tolerance: float = 0.01
    name: str = "numeric"
    threshold: float | None = None

    async def score(self, output: str, item: Item, judge: Judge) -> Score:
        try:
            expected = float(expected_text(item))
        except ValueError:
            return Score(0.0, f"the expected output {item.expected!r} is not a number")
        match = re.search(r"-?\d+(?:[.,]\d+)?(?:e-?\d+)?", output.replace(",", ""))
        if match is None:
            return Score(0.0, "no number in the output")
        got = float(match[0])
        close = math.isclose(got, expected, rel_tol=self.tolerance, abs_tol=self.tolerance)
        return Score(1.0 if close else 0.0, "" if close else f"{got} vs {expected}")
