"""The docs name every configuration field and their examples load (Datasette's habit: docs
that cannot go stale)."""

import re
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from stackyard.config import validate
from stackyard.config.finetune import FinetuneConfig
from stackyard.config.guardrails import (
    GuardrailsConfig,
    InjectionPolicy,
    JSONPolicy,
    PIIPolicy,
    SecretsPolicy,
    TopicsPolicy,
)
from stackyard.config.rag import RagConfig, VectorStoreConfig
from stackyard.config.schema import (
    AlertsConfig,
    AuthConfig,
    CacheConfig,
    LoggingPolicy,
    ModelEntry,
    ObservabilityConfig,
    OTLPConfig,
    RouterConfig,
    SemanticCacheConfig,
    ServerConfig,
)
from stackyard.gateway.providers import registry

DOCS = Path(__file__).resolve().parent.parent / "docs"


@pytest.mark.parametrize(
    "section",
    [
        ServerConfig,
        ModelEntry,
        RouterConfig,
        AuthConfig,
        ObservabilityConfig,
        LoggingPolicy,
        OTLPConfig,
        CacheConfig,
        SemanticCacheConfig,
        AlertsConfig,
        GuardrailsConfig,
        PIIPolicy,
        SecretsPolicy,
        InjectionPolicy,
        JSONPolicy,
        TopicsPolicy,
        RagConfig,
        VectorStoreConfig,
        FinetuneConfig,
    ],
)
def test_every_config_field_is_documented(section: type[BaseModel]) -> None:
    text = (DOCS / "configuration.md").read_text()
    missing = [name for name in section.model_fields if f"| `{name}` |" not in text]
    assert not missing, f"docs/configuration.md lacks {section.__name__} fields: {missing}"


@pytest.mark.parametrize(
    "page", ["../README.md", "configuration.md", "local-models.md", "observability.md"]
)
def test_yaml_examples_are_valid_configs(page: str) -> None:
    text = (DOCS / page).read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.S)
    assert blocks, f"{page} has no YAML example"
    env = {"OPENAI_API_KEY": "sk-x", "ANTHROPIC_API_KEY": "sk-y", "HONEYCOMB_KEY": "h"}
    for block in blocks:
        validate(yaml.safe_load(block), source=page, env=env, known_providers=registry.names())


def test_prompt_examples_are_valid_prompts() -> None:
    from stackyard.prompts.model import PushRequest

    text = (DOCS / "prompts.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.S)
    markdown = re.findall(r"```markdown\n---\n(.*?)\n---\n(.*?)```", text, re.S)
    assert blocks
    assert markdown
    for block in blocks:
        PushRequest.model_validate(yaml.safe_load(block))
    for front, body in markdown:
        PushRequest.model_validate({**yaml.safe_load(front), "template": body})


def test_the_evaluation_example_is_a_valid_evaluation() -> None:
    from stackyard.evals.config import EvalConfig

    text = (DOCS / "evals.md").read_text()
    [block] = re.findall(r"```yaml\n(.*?)```", text, re.S)
    EvalConfig.model_validate(yaml.safe_load(block))
