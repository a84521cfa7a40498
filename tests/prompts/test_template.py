"""Rendering: variables checked by type, ``{{variable}}`` substitution, the Jinja2 sandbox and
message placeholders."""

from __future__ import annotations

from typing import Any

import pytest

from stackyard.prompts.template import (
    RenderBound,
    RenderError,
    check_variables,
    render_messages,
    render_text,
)

SCHEMA: dict[str, dict[str, Any]] = {
    "name": {"type": "string"},
    "count": {"type": "integer", "default": 3},
    "tone": {"type": "string", "required": False},
}


def test_defaults_fill_in_and_optional_variables_may_be_left_out() -> None:
    assert check_variables(SCHEMA, {"name": "Ada"}) == {"name": "Ada", "count": 3}


@pytest.mark.parametrize(
    ("given", "variable", "message"),
    [
        ({}, "name", "missing variable 'name'"),
        ({"name": "Ada", "colour": "red"}, "colour", "unexpected variable 'colour'"),
        ({"name": 5}, "name", "must be a string, not int"),
        ({"name": "Ada", "count": "3"}, "count", "must be an integer, not str"),
        ({"name": "Ada", "count": True}, "count", "must be an integer, not bool"),
    ],
)
def test_bad_variables_fail_naming_the_variable(
    given: dict[str, Any], variable: str, message: str
) -> None:
    with pytest.raises(RenderError) as info:
        check_variables(SCHEMA, given)
    assert info.value.variable == variable
    assert message in str(info.value)


def test_mustache_substitutes_variables_and_nothing_else() -> None:
    with pytest.raises(RenderError):
        render_text("Hi {{ missing }}", {"name": "Ada"}, "mustache")  # not a variable
    values = {"name": "Ada", "count": 2, "ok": True}
    text = "Hi {{ name }}, {{count}} {{ok}}; {% raw %} {{ a.b }}"  # no logic, no attributes
    assert render_text(text, values, "mustache") == "Hi Ada, 2 true; {% raw %} {{ a.b }}"


def test_jinja_has_logic() -> None:
    template = "{% for item in items %}- {{ item | upper }}\n{% endfor %}"
    assert render_text(template, {"items": ["a", "b"]}, "jinja") == "- A\n- B\n"


@pytest.mark.parametrize(
    "template",
    [
        "{{ x.__class__.__mro__[1].__subclasses__() }}",
        "{{ x.__init__.__globals__ }}",
        "{% include '/etc/passwd' %}",
        "{% import 'os' as os %}",
        "{{ items.append(1) }}",  # immutable: no mutation of what it is given
        "{{ undefined_name }}",
    ],
)
def test_the_sandbox_refuses_safely(template: str) -> None:
    with pytest.raises(RenderError):
        render_text(template, {"x": 1, "items": []}, "jinja")


def test_placeholders_splice_messages_in() -> None:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "You help {{name}}."},
        {"type": "placeholder", "name": "history"},
        {"role": "user", "content": [{"type": "text", "text": "Now: {{name}}?"}]},
    ]
    history = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    out = render_messages(messages, {"name": "Ada", "history": history}, "mustache")
    assert out == [
        {"role": "system", "content": "You help Ada."},
        *history,
        {"role": "user", "content": [{"type": "text", "text": "Now: Ada?"}]},
    ]


def test_jinja_sees_values_as_they_are() -> None:
    template = (
        "{{ user.name }} has {{ items|length }}: {{ items|join(', ') }}; "
        "{% for k, v in user|dictsort %}{{ k }}={{ v }} {% endfor %}"
        "{{ user is mapping }} {{ items is sequence }} {{ 'b' in items }} {{ items[0] }} "
        "{{ user|tojson }} {{ items|tojson }} {{ range(3)|list }} {{ items + ['c'] }} "
        "{{ user.get('name') }} {{ user['name'] }} {{ items|first }} {{ items|last }}"
    )
    values = {"user": {"name": "Ada", "role": "x"}, "items": ["a", "b"]}
    assert render_text(template, values, "jinja") == (
        "Ada has 2: a, b; name=Ada role=x True True True a "
        '{"name": "Ada", "role": "x"} ["a", "b"] [0, 1, 2] [\'a\', \'b\', \'c\'] '
        "Ada Ada a b"
    )


@pytest.mark.parametrize(
    ("template", "values", "error"),
    [
        # Loops with nothing to write: the clock stops them.
        (
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
            {},
            "took more than 0.25 s",
        ),
        (
            "{% for a in xs %}{% for b in xs %}{% for c in xs %}{% endfor %}{% endfor %}"
            "{% endfor %}",
            {"xs": list(range(5000))},
            "took more than 0.25 s",
        ),
        # Repetition, concatenation and powers that would fill the memory are refused first.
        ("{{ 'x' * 1000000000 }}", {}, "more than 1,000,000 items"),
        ("{% set s = 'y' * 900000 %}{{ s + s }}", {}, "more than 1,000,000 items"),
        ("{{ 10 ** 100000000 }}", {}, "a number too large"),
        # Output that grows past the bound, a bit at a time.
        ("{% for i in range(100000) %}{{ s }}{% endfor %}", {"s": "z" * 100}, "characters"),
        ("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", {}, "too deeply"),
    ],
)
def test_a_jinja_render_is_bounded_in_time_and_size(
    template: str, values: dict[str, Any], error: str
) -> None:
    # Unbounded, the first two would run for hours and the rest fill the memory.
    with pytest.raises(RenderError, match=error):
        render_text(template, values, "jinja")


def test_a_mustache_render_is_bounded_in_size() -> None:
    with pytest.raises(RenderError, match="more than 1,000,000 characters"):
        render_text("{{x}}" * 1000, {"x": "w" * 2000}, "mustache")
    bound = RenderBound(chars=100)
    messages = [{"role": "user", "content": "{{x}}"}, {"role": "user", "content": "{{x}}"}]
    with pytest.raises(RenderError, match="more than 100 characters"):
        render_messages(messages, {"x": "v" * 60}, "mustache", bound)  # one bound for all
