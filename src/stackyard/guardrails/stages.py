"""The guardrails as stages of the request pipeline: secrets, PII, injection and topics on the
way in (PII restored and secrets masked on the way back), and the JSON check of a whole
answer. Each reads and changes the request through its door, so it knows nothing of doors."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from stackyard.errors import APIError
from stackyard.gateway.pipeline.stage import Stage
from stackyard.guardrails.audit import decide
from stackyard.guardrails.redaction import redacted
from stackyard.guardrails.unscannable import described
from stackyard.guardrails.vault import Vault

if TYPE_CHECKING:
    from stackyard.auth.admission import Ticket
    from stackyard.config.guardrails import GuardrailsConfig
    from stackyard.gateway.deployment import Deployment
    from stackyard.gateway.pipeline.core import Pipeline
    from stackyard.gateway.pipeline.door import Door
    from stackyard.gateway.pipeline.exchange import Body, Events, Exchange, Inbound
    from stackyard.gateway.router import Routed, RouteStats
    from stackyard.gateway.service import Gateway
    from stackyard.guardrails.ner import EntityTagger


def rails(gateway: Gateway, ticket: Ticket) -> GuardrailsConfig:
    """The guardrail policies for this request: the gateway's, its API's, its model's, its
    team's, its key's."""
    principal = ticket.principal
    return gateway.policies.for_request(
        principal.team_id, ticket.model, endpoint=ticket.endpoint, key_id=principal.key_id
    )


def tags_names(gateway: Gateway, ticket: Ticket) -> bool:
    """Whether this request's PII redaction may run the entity tagger."""
    policy = rails(gateway, ticket).pii
    return gateway.tagger is not None and policy.redact != "off" and policy.names


def pii_vault(gateway: Gateway, deployment: Deployment, ticket: Ticket) -> Vault | None:
    """A vault when this deployment's requests must leave without PII (the guardrails'
    policy), else None; then, where the policy says ``logs: detectors``, the request's trace
    gets the detectors to run on its stored bodies (in the writer's thread)."""
    policy = rails(gateway, ticket).pii
    tagger = gateway.tagger if policy.names else None
    kinds = frozenset(policy.kinds) if policy.kinds else None
    if policy.redact == "off" or (policy.redact == "external" and not deployment.external):
        if policy.logs == "detectors" and ticket.trace is not None:
            # it leaves unredacted, but is stored without what the detectors find
            found = partial(
                find_values,
                kinds,
                tagger,
                policy.place_confidence,
                policy.public_names,
                policy.linked_only,
            )
            ticket.trace.find_private = found
        return None
    if ticket.trace is not None:
        ticket.trace.root.attributes["stackyard.guardrails.pii"] = "redacted"
    vault = Vault(
        kinds,
        tagger,
        ticket.readings,
        policy.place_confidence,
        policy.public_names,
        policy.linked_only,
    )
    # Audited once the answer is back, and only if something was found: the kinds and
    # counts, never the values.
    decide(
        ticket,
        "pii",
        "redact",
        lambda: {"deployment": deployment.id, "found": vault.counts()} if len(vault) else None,
    )
    return vault


async def redacted_for(
    ticket: Ticket, body: Body, vault: Vault, change: Callable[[Body, Callable[[str], str]], Body]
) -> Body:
    """``body`` as it leaves, redacted (:func:`stackyard.guardrails.redaction.redacted`), and
    what was found handed to the request's trace: the store keeps none of it either."""
    sent = await redacted(body, vault, change)
    trace = ticket.trace
    if trace is not None and len(vault):
        trace.private = {**(trace.private or {}), **vault.found()}
    return sent


def find_values(
    kinds: frozenset[str] | None,
    tagger: EntityTagger | None,
    floor: float,
    public_names: bool,
    linked_only: bool,
    texts: list[str],
) -> dict[str, str]:
    """What the PII detectors find in ``texts`` (value: kind), as redaction would."""
    vault = Vault(kinds, tagger, None, floor, public_names, linked_only)
    for text in texts:
        vault.redact(text)
    return vault.found()


def secrets_out(ticket: Ticket, masked: int) -> None:
    """Record on the trace how many secrets an answer carried (masked)."""
    if masked:
        decide(ticket, "secrets_output", "redact", {"count": masked})
        if ticket.trace is not None:
            ticket.trace.root.attributes["stackyard.guardrails.secrets_output"] = masked


#: What a refusal calls each rail, and each kind of part it cannot read.
READERS = {"pii": "PII redaction", "injection": "the prompt-injection screen"}
ARTICLES = {"image": "an image", "audio": "audio", "file": "a file", "token ids": "token ids"}


def check_unscanned(ex: Exchange, body: Body, rail: str, refuse: bool) -> None:
    """Name on the trace and in the audit log the parts of ``body`` that ``rail`` cannot read
    (images, audio, files, token ids), once a request; refuse the request, a 400 naming the
    first of them, where the rail's policy says ``unscannable: refuse``."""
    key = f"guardrails.unscanned.{rail}"
    if key in ex.state:  # a later attempt (a fallback) of the same request
        return
    parts = ex.state[key] = ex.door.unscanned(body)
    if not parts:
        return
    ticket = ex.admitted
    named = described(parts)
    decide(ticket, rail, "refuse" if refuse else "unscanned", {"parts": named})
    if ticket.trace is not None:
        ticket.trace.root.attributes[f"stackyard.guardrails.{rail}.unscanned"] = named
    if refuse:
        where, what = parts[0]
        raise APIError(
            400,
            f"The request carries {ARTICLES.get(what, what)} in {where}, which "
            f"{READERS[rail]} cannot read; it was not sent. Send it as text, or ask an "
            f"administrator about guardrails.{rail}.unscannable.",
            type="invalid_request_error",
            param=where,
            code="unscannable_content",
        )


class _Guard(Stage):
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway


class SecretsStage(_Guard):
    """Refuse, or mask, a request carrying a secret; mask secrets in the answer."""

    name = "secrets"

    async def before(self, ex: Exchange) -> None:
        ticket = ex.admitted
        ex.body = check_secrets(self.gateway, ex.door, ex.body, ticket)

    async def outbound(
        self, ex: Exchange, deployment: Deployment, body: Body
    ) -> tuple[Body, Inbound | None]:
        if rails(self.gateway, ex.admitted).secrets.output != "redact":
            return body, None
        return body, _Masking(ex.door, ex.admitted)


@dataclass(slots=True)
class _Masking:
    door: Door
    ticket: Ticket

    def answer(self, answer: Body) -> Body:
        secrets_out(self.ticket, self.door.mask(answer))
        return answer

    def events(self, events: Events) -> Events:
        ticket = self.ticket
        return self.door.mask_events(events, lambda count: secrets_out(ticket, count))


def check_secrets(gateway: Gateway, door: Door, body: Body, ticket: Ticket) -> Body:
    """The request, or its masked copy, or the refusal (the guardrails' secrets policy)."""
    action = rails(gateway, ticket).secrets.action
    if action == "off":
        return body
    found = door.scan_secrets(body)
    if not found:
        return body
    detectors = sorted({s.detector for s in found})
    decide(
        ticket,
        "secrets",
        "redact" if action == "redact" else "block",
        {"detectors": detectors, "where": sorted({s.where for s in found})},
    )
    if ticket.trace is not None:
        ticket.trace.root.attributes["stackyard.guardrails.secrets"] = detectors
    if action == "redact":
        return door.mask_secrets(body)
    first = found[0]
    raise APIError(
        400,
        f"The request carries a secret ({first.detector}) in {first.where}, characters "
        f"{first.start}-{first.end}; it was not sent. Remove it, or ask an administrator "
        "about guardrails.secrets.",
        type="invalid_request_error",
        param=first.where,
        code="secret_detected",
    )


class PIIStage(_Guard):
    """Personal data leaves redacted for a deployment the policy says must not see it, and
    comes back restored."""

    name = "pii"

    async def outbound(
        self, ex: Exchange, deployment: Deployment, body: Body
    ) -> tuple[Body, Inbound | None]:
        vault = pii_vault(self.gateway, deployment, ex.admitted)
        if vault is None:
            return body, None
        refuse = rails(self.gateway, ex.admitted).pii.unscannable == "refuse"
        check_unscanned(ex, body, "pii", refuse)
        sent = await redacted_for(ex.admitted, body, vault, ex.door.change_texts)
        return sent, _Restoring(ex.door, vault)


@dataclass(slots=True)
class _Restoring:
    door: Door
    vault: Vault

    def answer(self, answer: Body) -> Body:
        return self.door.restore(answer, self.vault)

    def events(self, events: Events) -> Events:
        return self.door.restore_events(events, self.vault)


class InjectionStage(_Guard):
    """Prompt injection in the user's texts, tool results and retrieved passages."""

    name = "injection"

    async def before(self, ex: Exchange) -> None:
        screen = self.gateway.injection
        if screen is None:
            return
        ticket = ex.admitted
        policy = rails(self.gateway, ticket).injection
        if policy.action != "off":
            check_unscanned(ex, ex.body, "injection", policy.unscannable == "refuse")
        keep = tags_names(self.gateway, ticket)
        await screen.check(ex.body, ex.citations, ticket, policy, ex.door.texts, keep)


class TopicsStage(_Guard):
    """Denied topics in the user's texts."""

    name = "topics"

    async def before(self, ex: Exchange) -> None:
        screen = self.gateway.topics
        if screen is None:
            return
        ticket = ex.admitted
        await screen.check(ex.body, ticket, rails(self.gateway, ticket).topics, ex.door.texts)


class JsonStage(_Guard):
    """The output-validation rail (guardrails.json_output), for answers asked for as JSON:
    checked, repaired or asked for again, as the policy says."""

    name = "json_output"

    async def after(self, ex: Exchange, routed: Routed[Body], pipeline: Pipeline) -> Routed[Body]:
        from stackyard.gateway.validation import InvalidOutput, validate

        ticket = ex.admitted
        action = rails(self.gateway, ticket).json_output.action
        wanted = ex.door.wants_json(ex.body) if action != "off" else None
        if wanted is None:
            return routed

        async def ask(again: Body, stats: RouteStats) -> Routed[Body]:
            return await pipeline.call(ex, again, stats)

        try:
            outcome = await validate(ex.door, routed, ex.body, wanted, action, ask)
        except InvalidOutput:
            decide(ticket, "json", "failed", {"policy": action})
            if ticket.trace is not None:
                ticket.trace.root.attributes["stackyard.guardrails.json"] = "failed"
            raise
        if outcome != "valid":
            decide(ticket, "json", outcome, {"policy": action})
        if ticket.trace is not None:
            ticket.trace.root.attributes["stackyard.guardrails.json"] = outcome
        ex.headers.append((b"x-stackyard-guardrails-json", outcome.encode()))
        return routed


__all__: list[str] = [
    "InjectionStage",
    "JsonStage",
    "PIIStage",
    "SecretsStage",
    "TopicsStage",
    "check_secrets",
    "check_unscanned",
    "pii_vault",
    "rails",
    "secrets_out",
    "tags_names",
]
