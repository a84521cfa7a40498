"""The guardrails' section of the configuration: PII, secrets, injection, JSON output and
topic policies, and their per-team overrides."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from stackyard.config.strict import Strict as _Strict

#: The APIs a route policy may name (each door's endpoint).
ROUTES = ("chat", "completions", "messages", "responses", "embeddings")


class PIIPolicy(_Strict):
    redact: Literal["off", "external", "all"] = Field(
        default="off",
        description="Replace PII with placeholders before a chat request leaves: for "
        "deployments marked external (OpenAI, Anthropic, or external: true), for all, or off. "
        "Answers are restored before the client sees them.",
    )
    kinds: list[str] | None = Field(
        default=None,
        description="Which kinds to redact (default all): by pattern API_KEY, CARD, EMAIL, "
        "IBAN, IP, PHONE, SSN, URL (with its scheme or www.); by the entity tagger (names) "
        "ADDRESS, AGE, DATE, ID, "
        "LOCATION, NRP (nationalities, religions, political groups), ORGANIZATION, PERSON, "
        "URL, and those above.",
    )
    names: bool = Field(
        default=True,
        description="Also find names, postal addresses, places, organisations, dates, ages "
        "and the like with the entity tagger, on the in-process embedding model (the 'local' "
        "extra; loaded at start-up when a policy redacts). False: patterns only.",
    )
    place_confidence: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.3,
        description="How confident the entity tagger must be (the mean probability of the "
        "kind over the words) to redact a place (LOCATION) or an organisation "
        "(ORGANIZATION): capitalised words in ordinary questions are easily read as either. "
        "0 redacts every one it finds.",
    )
    public_names: bool = Field(
        default=True,
        description="Leave public subjects unredacted: the names, places, organisations and "
        "addresses of a sentence the sentence gate reads as about public subjects ('Why did "
        "the Ottoman Empire move its capital from Bursa to Edirne?'), and the people, "
        "organisations and groups the entity tagger's second head reads as public ('Who did "
        "Napoleon defeat at Austerlitz?'), while a private person's details ('my tenant Ama "
        "Owusu') are redacted. False: every name and place the tagger finds is redacted.",
    )
    linked_only: bool = Field(
        default=False,
        description="Redact places, organisations, dates, ages and groups (NRP) only in a "
        "text about someone: one where a name, a contact detail or an address was found, or "
        "that speaks of a person (I, my, she, his, mum, a client...). Alone, 'the Lyon depot' "
        "or 'founded in 1977' identifies no one. Fewer ordinary texts changed, some recall "
        "lost where the tagger misses the name beside a place (BENCHMARKS.md).",
    )
    logs: Literal["patterns", "detectors"] = Field(
        default="patterns",
        description="How the stored request logs of a request that leaves unredacted (an "
        "inside deployment under 'external', or redact 'off') are redacted: 'patterns', "
        "observability.redact_pii's recognisers only; 'detectors', the same detectors as "
        "redaction, the entity tagger included (names, places, addresses), run in the trace "
        "writer's thread, off the request path. A request redacted before it left is always "
        "stored without what was found in it.",
    )
    unscannable: Literal["send", "refuse"] = Field(
        default="send",
        description="A request that must leave redacted but carries what the detectors "
        "cannot read (an image, audio, a file such as a PDF, token ids): 'send' it with those "
        "parts unread (the trace and the audit log name them), or 'refuse' it (a 400 naming "
        "the first, code unscannable_content).",
    )

    @field_validator("kinds")
    @classmethod
    def _known(cls, kinds: list[str] | None) -> list[str] | None:
        from stackyard.guardrails.pii import KINDS

        for kind in kinds or ():
            if kind not in KINDS:
                raise ValueError(f"unknown kind '{kind}' (known: {', '.join(KINDS)})")
        return kinds


class SecretsPolicy(_Strict):
    action: Literal["off", "block", "redact"] = Field(
        default="off",
        description="A chat request carrying a secret (API key, private key, JWT, cloud "
        "credential, password in a connection string): block it (a 400 naming the detector), "
        "send it with the secret replaced by [SECRET], or off.",
    )
    output: Literal["off", "redact"] = Field(
        default="off",
        description="Secrets in answers (text, tool-call arguments, streams included) replaced "
        "by [SECRET] before the client sees them. A stream then holds back its last 128 "
        "characters (and any word or secret that may still grow) until more text arrives.",
    )


Scanned = Literal["user", "tool", "rag"]


def _everything_scanned() -> list[Scanned]:
    return ["user", "tool", "rag"]


class InjectionPolicy(_Strict):
    action: Literal["off", "block", "warn", "log"] = Field(
        default="off",
        description="A chat request that looks like a prompt injection or a jailbreak: block "
        "it (a 400 naming the detector), let it through with an x-stackyard-guardrails-warning "
        "header, log it (trace and log only), or off.",
    )
    scan: list[Scanned] = Field(
        default_factory=_everything_scanned,
        description="What is scanned: user messages, tool results, retrieved RAG passages.",
    )
    threshold: Annotated[float, Field(gt=0, le=1)] | None = Field(
        default=None,
        description="The classifier's threshold (default: the one shipped with its weights, "
        "0.986, chosen for 0.5% false positives on held-out benign text; 0.98 catches more and "
        "blocks more, see docs/guardrails.md).",
    )
    embedding_model: str = Field(
        default="all-minilm-l6-v2", description="The in-process model the classifier reads."
    )
    unscannable: Literal["send", "refuse"] = Field(
        default="send",
        description="A request carrying what the classifier cannot read (an image, audio, a "
        "file such as a PDF, token ids), whatever the action: 'send' it with those parts "
        "unread (the trace and the audit log name them), or 'refuse' it (a 400 naming the "
        "first, code unscannable_content).",
    )


class JSONPolicy(_Strict):
    action: Literal["off", "error", "repair", "reask"] = Field(
        default="off",
        description="Answers to requests with a JSON response_format (json_object or "
        "json_schema) must parse and match the schema: error (a 502 naming the problem), "
        "repair (local fixes first: code fences, prose around the JSON, trailing commas), "
        "reask (repair, then ask the model once more with the error), or off. Streams are "
        "not checked.",
    )


class TopicsPolicy(_Strict):
    action: Literal["off", "block", "warn", "log"] = Field(
        default="off",
        description="A user message with a denied word or on a banned topic: block it (a 400 "
        "naming the word or topic), warn (a header), log, or off.",
    )
    deny_words: list[str] = Field(
        default_factory=list,
        description="Words or phrases never sent (whole words, any case).",
    )
    banned: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Banned topics, each described by a few example sentences; a message as "
        "similar as threshold to one of them is on the topic.",
    )
    threshold: Annotated[float, Field(gt=0, le=1)] = Field(
        default=0.45,
        description="The cosine similarity (in-process embedding model) at which a message is "
        "on a banned topic.",
    )
    embedding_model: str = Field(
        default="all-minilm-l6-v2", description="The in-process model that compares them."
    )


class GuardrailsOverride(_Strict):
    """A team's or a model's own policies: each one given replaces the gateway's whole."""

    pii: PIIPolicy | None = None
    secrets: SecretsPolicy | None = None
    injection: InjectionPolicy | None = None
    json_output: JSONPolicy | None = None
    topics: TopicsPolicy | None = None


class GuardrailsConfig(_Strict):
    pii: PIIPolicy = PIIPolicy()
    secrets: SecretsPolicy = SecretsPolicy()
    injection: InjectionPolicy = InjectionPolicy()
    json_output: JSONPolicy = JSONPolicy()
    topics: TopicsPolicy = TopicsPolicy()
    models: dict[str, GuardrailsOverride] = Field(
        default_factory=dict,
        description="Policies for requests to a model (by the name clients use), replacing "
        "the ones above that they set.",
    )
    teams: dict[str, GuardrailsOverride] = Field(
        default_factory=dict,
        description="Policies for a team's requests (by team name or id), replacing the "
        "model's and the ones above that they set.",
    )
    routes: dict[str, GuardrailsOverride] = Field(
        default_factory=dict,
        description="Policies for the requests of one API (chat, completions, messages, "
        "responses, embeddings), replacing the gateway's; a model's, team's and key's replace "
        "them in turn.",
    )
    keys: dict[str, GuardrailsOverride] = Field(
        default_factory=dict,
        description="Policies for one virtual key's requests (by key id or name), replacing "
        "every other's that they set: the most specific.",
    )

    @field_validator("routes")
    @classmethod
    def _known_routes(cls, routes: dict[str, GuardrailsOverride]) -> dict[str, GuardrailsOverride]:
        unknown = sorted(set(routes) - set(ROUTES))
        if unknown:
            raise ValueError(f"unknown route {', '.join(unknown)}: expected {', '.join(ROUTES)}")
        return routes
