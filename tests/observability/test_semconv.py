"""Every ``gen_ai.*`` attribute the gateway emits is one the GenAI semantic conventions define,
as the installed ``opentelemetry-semantic-conventions`` package lists them, and not one they
replaced or removed.

The package (0.66b2) marks every GenAI attribute "Deprecated: Moved to the OpenTelemetry GenAI
semantic conventions repository": the names stand, only their home moved. Those are current;
"Replaced by ..." and "Removed" are what deprecate a name.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes

import stackyard
from stackyard.observability import semconv


def _conventions() -> dict[str, str]:
    """Each GenAI attribute the package defines, with its docstring."""
    tree = ast.parse(inspect.getsource(gen_ai_attributes))
    found: dict[str, str] = {}
    body = tree.body
    for statement, following in zip(body, [*body[1:], None], strict=True):
        if not (
            isinstance(statement, ast.AnnAssign)
            and isinstance(statement.value, ast.Constant)
            and isinstance(statement.value.value, str)
        ):
            continue
        doc = ""
        if isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant):
            doc = str(following.value.value)
        found[statement.value.value] = doc
    return found


CONVENTIONS = _conventions()
DEPRECATED = {
    name
    for name, doc in CONVENTIONS.items()
    if "Deprecated: Replaced by" in doc or "Deprecated: Removed" in doc
}


def emitted() -> set[str]:
    """Every ``gen_ai.*`` string literal in the gateway's source, and what the request
    attributes make of a request that sets every parameter."""
    names = set()
    for path in Path(stackyard.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and node.value.startswith("gen_ai.")
            ):
                names.add(node.value)
    body: dict[str, Any] = dict.fromkeys(semconv.REQUEST_PARAMETERS, 1)
    body.update(model="m", stream=True, stop=["x"], response_format={"type": "json_schema"})
    names.update(n for n in semconv.request_attributes("chat", body) if n.startswith("gen_ai."))
    return names


def test_the_package_is_read() -> None:
    assert "gen_ai.request.model" in CONVENTIONS
    assert "gen_ai.system" in DEPRECATED  # replaced by gen_ai.provider.name
    assert "gen_ai.usage.prompt_tokens" in DEPRECATED
    assert "gen_ai.usage.input_tokens" not in DEPRECATED


def test_the_scan_sees_what_the_recorder_emits() -> None:
    names = emitted()
    assert {
        "gen_ai.operation.name",
        "gen_ai.usage.output_tokens",
        "gen_ai.response.time_to_first_chunk",
        "gen_ai.embeddings.dimension.count",
        "gen_ai.request.stream",
    } <= names


@pytest.mark.parametrize("name", sorted(emitted()))
def test_an_emitted_name_is_a_current_convention(name: str) -> None:
    assert name in CONVENTIONS, f"{name} is not a GenAI semantic convention"
    assert name not in DEPRECATED, f"{name}: {CONVENTIONS[name].strip()}"


def test_well_known_values_are_the_conventions() -> None:
    operations = {v.value for v in gen_ai_attributes.GenAiOperationNameValues}
    providers = {v.value for v in gen_ai_attributes.GenAiProviderNameValues}
    assert set(semconv.OPERATIONS.values()) <= operations
    assert set(semconv.PROVIDERS.values()) <= providers
    output = semconv.request_attributes("chat", {"response_format": {"type": "json_object"}})
    assert output["gen_ai.output.type"] in {
        v.value for v in gen_ai_attributes.GenAiOutputTypeValues
    }
