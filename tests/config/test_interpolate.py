import pytest

from stackyard.config.interpolate import MissingVariableError, interpolate

ENV = {"KEY": "sk-123", "EMPTY": ""}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${KEY}", "sk-123"),
        ("Bearer ${KEY}!", "Bearer sk-123!"),
        ("${MISSING:-fallback}", "fallback"),
        ("${EMPTY:-fallback}", "fallback"),
        ("${EMPTY}", ""),
        ("${MISSING:-}", ""),
        ("$${KEY}", "${KEY}"),
        ("no variables", "no variables"),
        ("$KEY", "$KEY"),
    ],
)
def test_interpolate(text: str, expected: str) -> None:
    assert interpolate(text, ENV) == expected


def test_missing_variable_names_it() -> None:
    with pytest.raises(MissingVariableError) as info:
        interpolate("${NOT_SET}", ENV)
    assert info.value.name == "NOT_SET"
