"""The docs name every configuration field (Datasette's habit: docs that cannot go stale)."""

from pathlib import Path

import pytest
from pydantic import BaseModel

from stackyard.config.schema import ModelEntry, RouterConfig, ServerConfig

DOCS = Path(__file__).resolve().parent.parent / "docs"


@pytest.mark.parametrize("section", [ServerConfig, ModelEntry, RouterConfig])
def test_every_config_field_is_documented(section: type[BaseModel]) -> None:
    text = (DOCS / "configuration.md").read_text()
    missing = [name for name in section.model_fields if f"| `{name}` |" not in text]
    assert not missing, f"docs/configuration.md lacks {section.__name__} fields: {missing}"
