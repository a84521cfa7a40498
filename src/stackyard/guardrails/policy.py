"""Which policies apply to a request: the gateway's, then its API's (route), its model's, its
team's, then its key's (the most specific wins, policy by policy). Worked out once per route,
model, team and key, then served from memory."""

from __future__ import annotations

from collections.abc import Callable

from stackyard.config.guardrails import GuardrailsConfig, GuardrailsOverride, PIIPolicy

POLICIES = ("pii", "secrets", "injection", "json_output", "topics")


def _apply(rails: GuardrailsConfig, override: GuardrailsOverride | None) -> GuardrailsConfig:
    if override is None:
        return rails
    given = {name: getattr(override, name) for name in POLICIES if getattr(override, name)}
    return rails.model_copy(update=given) if given else rails


class Policies:
    def __init__(
        self,
        config: GuardrailsConfig,
        team_names: Callable[[], dict[str, str]] = dict,
        key_names: Callable[[], dict[str, str]] = dict,
    ) -> None:
        self.config = config
        self.team_names = team_names
        self.key_names = key_names
        self._resolved: dict[tuple[str | None, str, str, str, str | None], GuardrailsConfig] = {}

    def for_request(
        self,
        team_id: str | None,
        model: str,
        *,
        endpoint: str = "chat",
        key_id: str | None = None,
    ) -> GuardrailsConfig:
        name = self.team_names().get(team_id, "") if team_id is not None else ""
        # The names too: a renamed team or key gets its new policies.
        named = self._key_policy(key_id)
        key = (team_id, name, model, endpoint, named)
        found = self._resolved.get(key)
        if found is None:
            found = self._resolved[key] = self._resolve(*key)
        return found

    def _resolve(
        self, team_id: str | None, name: str, model: str, endpoint: str, key_entry: str | None
    ) -> GuardrailsConfig:
        config = self.config
        rails = _apply(config, config.routes.get(endpoint))
        rails = _apply(rails, config.models.get(model))
        if team_id is not None:
            rails = _apply(rails, config.teams.get(team_id) or config.teams.get(name))
        if key_entry is not None:
            rails = _apply(rails, config.keys.get(key_entry))
        return rails

    def _key_policy(self, key_id: str | None) -> str | None:
        """The entry of ``keys`` that names this key, by its id or else its name."""
        if key_id is None or not self.config.keys:
            return None
        if key_id in self.config.keys:
            return key_id
        name = self.key_names().get(key_id)
        return name if name in self.config.keys else None

    def _overrides(self) -> list[GuardrailsOverride]:
        config = self.config
        return [
            *config.routes.values(),
            *config.models.values(),
            *config.teams.values(),
            *config.keys.values(),
        ]

    def any_on(self, rail: str) -> bool:
        """Whether any request may go through ``rail`` (``injection`` or ``topics``: their
        screens must be loaded at start)."""
        policies = [getattr(self.config, rail)]
        for override in self._overrides():
            policies.append(getattr(override, rail))
        return any(p is not None and p.action != "off" for p in policies)

    def tags_names(self) -> bool:
        """Whether any request's PII redaction, or its stored logs' redaction, uses the
        entity tagger (it must be loaded at start)."""
        policies: list[PIIPolicy | None] = [self.config.pii]
        for override in self._overrides():
            policies.append(override.pii)
        return any(
            p is not None and (p.redact != "off" or p.logs == "detectors") and p.names
            for p in policies
        )
