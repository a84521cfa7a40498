"""Which guardrail policies apply: the gateway's, then the route's, the model's, the
team's and the key's."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from stackyard.config.guardrails import GuardrailsConfig
from stackyard.guardrails.policy import Policies

CONFIG = GuardrailsConfig.model_validate(
    {
        "pii": {"redact": "external"},
        "secrets": {"action": "redact"},
        "models": {
            "gpt-4o": {"secrets": {"action": "block"}, "json_output": {"action": "reask"}},
        },
        "teams": {
            "legal": {"pii": {"redact": "all"}, "secrets": {"action": "off"}},
            "team_42": {"injection": {"action": "warn"}},
        },
    }
)


def test_the_most_specific_policy_wins_policy_by_policy() -> None:
    names = {"team_1": "legal", "team_2": "search"}
    policies = Policies(CONFIG, lambda: names)
    plain = policies.for_request("team_2", "claude")
    assert (plain.pii.redact, plain.secrets.action, plain.json_output.action) == (
        "external",
        "redact",
        "off",
    )
    model = policies.for_request("team_2", "gpt-4o")
    assert (model.pii.redact, model.secrets.action, model.json_output.action) == (
        "external",
        "block",
        "reask",
    )
    legal = policies.for_request("team_1", "gpt-4o")  # the team beats the model
    assert (legal.pii.redact, legal.secrets.action, legal.json_output.action) == (
        "all",
        "off",
        "reask",
    )
    assert policies.for_request(None, "claude").pii.redact == "external"  # open or master
    assert policies.for_request("team_42", "claude").injection.action == "warn"  # by id


def test_a_renamed_team_gets_its_new_names_policies() -> None:
    names = {"team_1": "legal"}
    policies = Policies(CONFIG, lambda: names)
    assert policies.for_request("team_1", "m").pii.redact == "all"
    names["team_1"] = "search"
    assert policies.for_request("team_1", "m").pii.redact == "external"


def test_the_injection_screen_loads_when_any_policy_needs_it() -> None:
    assert Policies(CONFIG).any_on("injection")
    assert not Policies(GuardrailsConfig()).any_on("injection")


def test_a_route_and_a_key_have_policies_of_their_own() -> None:
    """The order: the gateway's, the route's, the model's, the team's, the key's."""
    config = GuardrailsConfig.model_validate(
        {
            "pii": {"redact": "external"},
            "routes": {
                "embeddings": {"pii": {"redact": "off"}},
                "messages": {"injection": {"action": "block"}},
            },
            "models": {"gpt-4o": {"secrets": {"action": "block"}}},
            "teams": {"legal": {"pii": {"redact": "all"}}},
            "keys": {"key_batch": {"pii": {"redact": "off"}, "secrets": {"action": "redact"}}},
        }
    )
    policies = Policies(config, lambda: {"team_1": "legal"})
    assert policies.for_request(None, "m", endpoint="chat").pii.redact == "external"
    assert policies.for_request(None, "m", endpoint="embeddings").pii.redact == "off"
    assert policies.for_request("team_1", "m", endpoint="embeddings").pii.redact == "all"
    messages = policies.for_request(None, "m", endpoint="messages")
    assert messages.injection.action == "block"  # the route turned the rail on
    assert policies.for_request(None, "m", endpoint="chat").injection.action == "off"
    keyed = policies.for_request("team_1", "gpt-4o", key_id="key_batch")
    assert (keyed.pii.redact, keyed.secrets.action) == ("off", "redact")  # the key beats all
    other = policies.for_request("team_1", "gpt-4o", key_id="key_other")
    assert (other.pii.redact, other.secrets.action) == ("all", "block")
    assert Policies(config).any_on("injection")  # a route's policy loads the screen


def test_an_unknown_route_is_refused_at_start() -> None:
    with pytest.raises(ValidationError, match="unknown route chats"):
        GuardrailsConfig.model_validate({"routes": {"chats": {"pii": {"redact": "all"}}}})


def test_a_key_policy_may_name_the_key() -> None:
    config = GuardrailsConfig.model_validate(
        {"pii": {"redact": "external"}, "keys": {"nightly-batch": {"pii": {"redact": "off"}}}}
    )
    names = {"key_1": "nightly-batch"}
    policies = Policies(config, key_names=lambda: names)
    assert policies.for_request(None, "m", key_id="key_1").pii.redact == "off"
    assert policies.for_request(None, "m", key_id="key_2").pii.redact == "external"
    names["key_1"] = "renamed"
    assert policies.for_request(None, "m", key_id="key_1").pii.redact == "external"


def test_the_tagger_loads_for_logs_redacted_by_the_detectors_alone() -> None:
    assert not Policies(GuardrailsConfig()).tags_names()
    detectors = GuardrailsConfig.model_validate({"pii": {"logs": "detectors"}})
    assert Policies(detectors).tags_names()
    patterns_only = GuardrailsConfig.model_validate({"pii": {"logs": "detectors", "names": False}})
    assert not Policies(patterns_only).tags_names()
