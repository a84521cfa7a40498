"""Which guardrail policies apply: the gateway's, then the model's, then the team's."""

from __future__ import annotations

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
