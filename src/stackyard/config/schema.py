"""The configuration file's shape, validated with pydantic.

Every field has a default, so an empty file (or no file at all) is a valid configuration: the
embedded default. Field names follow the YAML file; see ``docs/configuration.md``.
"""

from __future__ import annotations

import os
from typing import Annotated, Literal

from pydantic import Field, PrivateAttr, field_validator, model_validator

from stackyard.config.finetune import FinetuneConfig
from stackyard.config.guardrails import GuardrailsConfig
from stackyard.config.rag import RagConfig
from stackyard.config.strict import Strict as _Strict

Strategy = Literal["weighted-random", "least-outstanding", "lowest-latency"]


class ModelDefaults(_Strict):
    """What a request that does not say gets (chat-completions names; a Messages request to
    Anthropic gets them by its own names)."""

    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(gt=0, le=1)] | None = None
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    stop: list[str] | None = None
    seed: int | None = None
    presence_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    frequency_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None

    def given(self) -> dict[str, object]:
        return self.model_dump(exclude_none=True)


class ModelEntry(_Strict):
    """One deployment of a model. Entries sharing a ``name`` are balanced by the router."""

    name: Annotated[str, Field(min_length=1, description="The model name clients ask for.")]
    provider: Annotated[str, Field(min_length=1, description="A registered provider.")]
    model: str | None = Field(
        default=None, description="The provider's own model id (defaults to `name`)."
    )
    api_base: str | None = None
    api_key: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    id: str | None = Field(
        default=None,
        description="A stable deployment id, shown in `x-stackyard-model-deployment` "
        "(defaults to `name#index`).",
    )
    weight: Annotated[float, Field(gt=0)] = 1.0
    rpm: Annotated[int, Field(gt=0)] | None = Field(
        default=None, description="Requests per minute this deployment may receive (its quota)."
    )
    tpm: Annotated[int, Field(gt=0)] | None = Field(
        default=None, description="Tokens per minute this deployment may use (its quota)."
    )
    timeout: Annotated[float, Field(gt=0)] | None = None
    ttft_timeout: Annotated[float, Field(gt=0)] | None = None
    input_cost_per_mtok: Annotated[float, Field(ge=0)] | None = None
    output_cost_per_mtok: Annotated[float, Field(ge=0)] | None = None
    cached_input_cost_per_mtok: Annotated[float, Field(ge=0)] | None = None
    cost_per_second: Annotated[float, Field(ge=0)] | None = Field(
        default=None,
        description="USD per second a request spends on this deployment (for in-process and "
        "self-hosted models: their GPU or CPU time), on top of any token prices.",
    )
    external: bool | None = Field(
        default=None,
        description="Whether requests leave the organisation (defaults by provider).",
    )
    options: dict[str, object] = Field(
        default_factory=dict, description="Provider-specific settings."
    )
    base: str | None = Field(
        default=None,
        description="For an adapter: the name of the local model whose weights it extends.",
    )
    adapter: str | None = Field(
        default=None, description="A PEFT LoRA adapter directory, served on the base's weights."
    )
    defaults: ModelDefaults = Field(
        default_factory=lambda: ModelDefaults(),
        description="Sampling parameters this deployment is called with when a request sets "
        "none of its own.",
    )

    @property
    def upstream_model(self) -> str:
        return self.model or self.name

    @field_validator("api_base")
    @classmethod
    def _check_api_base(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("expected an http:// or https:// URL")
        return value.rstrip("/") if value else value


class Backoff(_Strict):
    initial: Annotated[float, Field(ge=0)] = 0.25
    multiplier: Annotated[float, Field(ge=1)] = 2.0
    max: Annotated[float, Field(ge=0)] = 8.0
    jitter: Annotated[float, Field(ge=0, le=1)] = 0.2


class Cooldown(_Strict):
    allowed_fails: Annotated[int, Field(ge=1)] = 3
    window: Annotated[float, Field(gt=0)] = 60.0
    duration: Annotated[float, Field(ge=0)] = 10.0


class RouterConfig(_Strict):
    strategy: Strategy = "weighted-random"
    retries: Annotated[int, Field(ge=0)] = Field(
        default=2, description="Retries within one model before moving down the fallback chain."
    )
    max_attempts: Annotated[int, Field(ge=1)] = Field(
        default=6, description="Attempts for one request across the whole fallback chain."
    )
    timeout: Annotated[float, Field(gt=0)] = Field(
        default=600.0, description="Total time for one request, all attempts included (seconds)."
    )
    attempt_timeout: Annotated[float, Field(gt=0)] = Field(
        default=120.0, description="Time for one upstream attempt without streaming (seconds)."
    )
    ttft_timeout: Annotated[float, Field(gt=0)] = Field(
        default=30.0, description="Time to the first streamed chunk (seconds)."
    )
    stream_idle_timeout: Annotated[float, Field(gt=0)] = Field(
        default=120.0, description="Longest silence between two streamed chunks (seconds)."
    )
    max_retry_wait: Annotated[float, Field(ge=0)] = Field(
        default=10.0,
        description="Longest wait the router accepts before retrying (Retry-After or backoff).",
    )
    backoff: Backoff = Backoff()
    cooldown: Cooldown = Cooldown()
    fallbacks: dict[str, list[str]] = Field(default_factory=dict)
    latency_ewma_alpha: Annotated[float, Field(gt=0, le=1)] = 0.3


class ServerConfig(_Strict):
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8000
    workers: Annotated[int, Field(ge=1)] = 1
    max_body_bytes: Annotated[int, Field(gt=0)] = 10 * 1024 * 1024
    max_json_depth: Annotated[int, Field(ge=2, le=1000)] = Field(
        default=64,
        description="How deep a request's JSON may nest (objects and arrays); deeper is a 400 "
        "before anything else runs.",
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    secure_cookies: bool = Field(
        default=False,
        description="Mark the console's cookies Secure (set it when TLS ends in front of the "
        "gateway); they are whenever a request came over https.",
    )
    console_session_hours: Annotated[float, Field(gt=0)] = Field(
        default=12.0, description="A console session ends this long after its login."
    )
    console_idle_minutes: Annotated[float, Field(gt=0)] = Field(
        default=60.0, description="A console session ends after this long without a page."
    )


#: Options an adapter inherits from its base, so that both run on one engine.
ENGINE_OPTIONS = ("device", "dtype", "max_batch", "max_queue")


class AuthConfig(_Strict):
    master_key: str | None = Field(
        default=None, description="Administers everything; also read from STACKYARD_MASTER_KEY."
    )
    refresh_seconds: Annotated[float, Field(gt=0)] = 0.5
    spend_journal: str | None = Field(
        default=None,
        description="The folder of the spend journal, which keeps every accepted spend row on "
        "local disk within milliseconds and is replayed at start (default: "
        "stackyard-journal/ next to the config file, or in the working directory).",
    )
    spend_journal_fsync: bool = Field(
        default=False,
        description="fsync each group commit of the spend journal (survives power loss too; a "
        "killed process loses nothing the kernel was given either way).",
    )
    redis_outage: Literal["open", "closed"] = Field(
        default="open",
        description="While Redis (redis_url) cannot be reached, requests under shared limits or "
        "budgets are served unlimited (open: availability first; each is logged) or refused "
        "with a 503 (closed: spend control first).",
    )


BodyMode = Literal["full", "metadata", "off"]


class LoggingPolicy(_Strict):
    """What is stored of a team's requests (metrics always count every request)."""

    bodies: BodyMode | None = Field(
        default=None,
        description="full: traces with request and response bodies; metadata: traces without "
        "bodies; off: nothing stored (metrics only). Default: the section's own setting.",
    )
    sample_rate: Annotated[float, Field(ge=0, le=1)] | None = Field(
        default=None, description="Share of requests whose bodies are stored (0 to 1)."
    )
    retention_days: Annotated[float, Field(gt=0)] | None = Field(
        default=None, description="Traces older than this are purged."
    )


OTLPProtocol = Literal["http/protobuf", "http/json", "grpc"]


class OTLPConfig(_Strict):
    """Export of spans to an OpenTelemetry collector. A field left unset here takes its
    standard ``OTEL_EXPORTER_OTLP_*`` environment variable, then the default: the file wins."""

    endpoint: str | None = Field(
        default=None,
        description="The collector's traces endpoint, used as is: an OTLP/HTTP URL such as "
        "http://collector:4318/v1/traces, or for grpc http://collector:4317. Unset: "
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, or OTEL_EXPORTER_OTLP_ENDPOINT (/v1/traces "
        "appended for HTTP); neither: spans are stored locally only.",
    )
    protocol: OTLPProtocol | None = Field(
        default=None,
        description="http/protobuf (default), http/json or grpc (needs stackyard[grpc]). "
        "Unset: OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or OTEL_EXPORTER_OTLP_PROTOCOL.",
    )
    compression: Literal["gzip", "none"] | None = Field(
        default=None,
        description="gzip (default) or none. Unset: OTEL_EXPORTER_OTLP_TRACES_COMPRESSION or "
        "OTEL_EXPORTER_OTLP_COMPRESSION.",
    )
    headers: dict[str, str] = Field(
        default_factory=dict,
        description="Headers sent with each export (e.g. an API key). Empty: "
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS or OTEL_EXPORTER_OTLP_HEADERS.",
    )
    service_name: str | None = Field(
        default=None,
        description="The service.name resource attribute. Unset: OTEL_SERVICE_NAME, then "
        "service.name in OTEL_RESOURCE_ATTRIBUTES, then stackyard.",
    )
    timeout: Annotated[float, Field(gt=0)] | None = Field(
        default=None,
        description="Seconds for one export call (default 10). Unset: "
        "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT or OTEL_EXPORTER_OTLP_TIMEOUT (milliseconds).",
    )
    encoder: Literal["thread", "process"] = Field(
        default="process",
        description="Where batches are encoded: a process of its own (the default: the spans "
        "are copied to it, and encoding no longer holds the server's interpreter lock; about "
        "120 MiB more memory per worker), or a worker thread of the server's process.",
    )

    @model_validator(mode="after")
    def _grpc_installed(self) -> OTLPConfig:
        import importlib.util

        if self.protocol == "grpc" and importlib.util.find_spec("grpc") is None:
            raise ValueError(
                "protocol grpc needs grpcio, which is not installed (pip install 'stackyard[grpc]')"
            )
        return self


class ObservabilityConfig(_Strict):
    bodies: BodyMode = Field(
        default="full",
        description="full: store request and response bodies with each trace; metadata: spans "
        "and attributes only; off: store nothing (metrics only).",
    )
    sample_rate: Annotated[float, Field(ge=0, le=1)] = Field(
        default=1.0, description="Share of requests whose bodies are stored (0 to 1)."
    )
    retention_days: Annotated[float, Field(gt=0)] = Field(
        default=30.0, description="Traces older than this are purged by a background task."
    )
    redact_pii: bool = Field(
        default=True,
        description="Replace emails, phone numbers, card numbers and API keys in stored bodies.",
    )
    redact_patterns: list[str] = Field(
        default_factory=list, description="More regular expressions to redact in stored bodies."
    )
    teams: dict[str, LoggingPolicy] = Field(
        default_factory=dict, description="Per-team overrides, by team id or name."
    )
    queue_size: Annotated[int, Field(gt=0)] = Field(
        default=50_000,
        description="Traces waiting to be written; when full, new traces are dropped (counted "
        "in stackyard_traces_dropped_total), never requests.",
    )
    flush_interval: Annotated[float, Field(gt=0)] = Field(
        default=0.5, description="Seconds between batched writes of traces."
    )
    metrics_key_labels: bool = Field(
        default=False, description="Label request metrics with the key id too (unbounded)."
    )
    metrics_token: str | None = Field(
        default=None,
        description="A bearer token that may read /metrics besides the master key (for "
        "Prometheus). With keys on, /metrics needs one of them; on an open gateway it is open.",
    )
    otlp: OTLPConfig = OTLPConfig()

    @field_validator("redact_patterns")
    @classmethod
    def _compiles(cls, patterns: list[str]) -> list[str]:
        import re

        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None
        return patterns


class SemanticCacheConfig(_Strict):
    error_budget: Annotated[float, Field(gt=0, lt=0.5)] = Field(
        default=0.02,
        description="The share of semantic hits allowed to answer a different question: the "
        "pair classifier's threshold is the lowest that met it on held-out question pairs.",
    )
    max_temperature: Annotated[float, Field(ge=0)] = Field(
        default=0.0,
        description="Requests sampled hotter than this (OpenAI's default temperature is 1) "
        "use the exact tier only.",
    )
    min_similarity: Annotated[float, Field(ge=-1, le=1)] = Field(
        default=0.5, description="Cached questions less similar than this are not considered."
    )
    top_k: Annotated[int, Field(gt=0, le=64)] = Field(
        default=2, description="How many nearest cached questions the classifier weighs."
    )
    embedding_model: str = Field(
        default="all-minilm-l6-v2",
        description="The in-process embedding model for questions (an alias or a directory).",
    )


class CachePolicy(_Strict):
    mode: Literal["exact", "semantic", "off"] | None = Field(
        default=None, description="This team's default mode (default: the section's)."
    )
    ttl: Annotated[float, Field(gt=0)] | None = Field(
        default=None, description="This team's entries' lifetime in seconds."
    )


class CacheConfig(_Strict):
    mode: Literal["exact", "semantic", "off"] = Field(
        default="off",
        description="The default for requests that say nothing: exact (identical requests "
        "are answered from the cache), semantic (so are questions that mean the same), or "
        "off. A request may choose with its 'cache' field or x-stackyard-cache-mode.",
    )
    ttl: Annotated[float, Field(gt=0)] = Field(
        default=3600.0, description="Seconds an entry lives (a request may ask for less)."
    )
    backend: Literal["memory", "redis", "pgvector"] = Field(
        default="memory",
        description="memory: this process (bounded, LRU); redis: shared by every instance "
        "(needs redis_url); pgvector: shared, in PostgreSQL with pgvector (cache.database_url, "
        "else database_url).",
    )
    database_url: str | None = Field(
        default=None,
        description="The PostgreSQL (with pgvector) of the pgvector backend, if not the "
        "gateway's own database.",
    )
    max_entries: Annotated[int, Field(gt=0)] = Field(
        default=10_000, description="The in-process backend's bound (least recently used go)."
    )
    cost_per_hit: Annotated[float, Field(ge=0)] = Field(
        default=0.0, description="USD charged to the caller for an answer from the cache."
    )
    teams: dict[str, CachePolicy] = Field(
        default_factory=dict, description="Per-team defaults, by team name or id."
    )
    semantic: SemanticCacheConfig = SemanticCacheConfig()


class AlertsConfig(_Strict):
    budget_thresholds: list[Annotated[float, Field(gt=0)]] = Field(
        default_factory=lambda: [0.8, 1.0],
        description="Shares of a budget whose crossing raises an alert (soft and hard budgets).",
    )
    webhook_url: str | None = Field(
        default=None, description="Each alert is POSTed here as JSON (Slack, PagerDuty, ...)."
    )
    webhook_headers: dict[str, str] = Field(
        default_factory=dict, description="Headers sent with each alert (an auth token, say)."
    )


class BatchesConfig(_Strict):
    """How the gateway runs batches (``/v1/batches``) in the background."""

    concurrency: Annotated[int, Field(ge=1, le=256)] = Field(
        default=4, description="Lines of one batch in flight at once, at most."
    )
    pause_above: Annotated[int, Field(ge=1)] = Field(
        default=8,
        description="A batch line starts only while fewer interactive requests than this are "
        "in flight on this instance: batches never take the capacity interactive traffic needs.",
    )
    poll_seconds: Annotated[float, Field(gt=0)] = Field(
        default=2.0, description="How often an idle instance looks for a batch to run."
    )
    lease_seconds: Annotated[float, Field(gt=0)] = Field(
        default=60.0,
        description="How long an instance holds a batch without renewing: after that, another "
        "instance takes it over and resumes it.",
    )


class StackyardConfig(_Strict):
    server: ServerConfig = ServerConfig()
    models: list[ModelEntry] = Field(default_factory=list)
    router: RouterConfig = RouterConfig()
    auth: AuthConfig = AuthConfig()
    observability: ObservabilityConfig = ObservabilityConfig()
    cache: CacheConfig = CacheConfig()
    alerts: AlertsConfig = AlertsConfig()
    guardrails: GuardrailsConfig = GuardrailsConfig()
    rag: RagConfig = RagConfig()
    finetune: FinetuneConfig = FinetuneConfig()
    batches: BatchesConfig = BatchesConfig()
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default: SQLite file stackyard.db next to the config.",
    )
    redis_url: str | None = Field(
        default=None,
        description="Shares rate limits and budgets between instances (redis://host:6379/0).",
    )
    ray_address: str | None = Field(
        default=None,
        description="A Ray cluster for large RAG syncs and fine-tuning jobs: 'auto', "
        "'ray://host:10001', or 'local' (a runtime started on this machine). Needs the ray "
        "extra.",
    )
    #: Lines for the start-up banner about how the config was completed (the embedded
    #: default's models, or why they could not load). Not part of the file's schema.
    _startup_notes: list[str] = PrivateAttr(default_factory=list)

    @property
    def startup_notes(self) -> list[str]:
        return self._startup_notes

    def noted(self, notes: list[str]) -> StackyardConfig:
        """This config, with ``notes`` for the banner (set once, by whoever completed it)."""
        assert self.__pydantic_private__ is not None
        self.__pydantic_private__["_startup_notes"] = list(notes)
        return self

    @model_validator(mode="before")
    @classmethod
    def _resolve_bases(cls, data: object) -> object:
        """``base: NAME`` takes that model's weights (``model``) and engine options."""
        if not isinstance(data, dict) or not isinstance(data.get("models"), list):
            return data
        by_name = {
            m.get("name"): m for m in data["models"] if isinstance(m, dict) and not m.get("base")
        }
        models = []
        for entry in data["models"]:
            base = by_name.get(entry.get("base")) if isinstance(entry, dict) else None
            if base is not None and not entry.get("model"):
                options = base.get("options") or {}
                inherited = {k: v for k, v in options.items() if k in ENGINE_OPTIONS}
                entry = {
                    "provider": base.get("provider"),
                    **entry,
                    "model": base.get("model") or base.get("name"),
                    "options": {**inherited, **(entry.get("options") or {})},
                }
            models.append(entry)
        return {**data, "models": models}

    @model_validator(mode="after")
    def _check_references(self) -> StackyardConfig:
        names = {m.name for m in self.models}
        for source, targets in self.router.fallbacks.items():
            for where, name in [(source, source), *((source, t) for t in targets)]:
                if name not in names:
                    known = ", ".join(sorted(names)) or "none"
                    raise ValueError(
                        f"router.fallbacks.{where}: unknown model '{name}' (models: {known})"
                    )
        for index, entry in enumerate(self.models):
            if entry.base is not None and entry.base not in names:
                known = ", ".join(sorted(names)) or "none"
                raise ValueError(
                    f"models.{index}.base: unknown model '{entry.base}' (models: {known})"
                )
            if entry.adapter is not None and entry.provider != "local":
                raise ValueError(
                    f"models.{index}.adapter: adapters are served by the 'local' provider"
                )
        if self.cache.backend == "redis" and not (
            self.redis_url or os.environ.get("STACKYARD_REDIS_URL")
        ):
            raise ValueError("cache.backend: redis needs redis_url (or STACKYARD_REDIS_URL)")
        if self.cache.backend == "pgvector":
            url = self.cache.database_url or self.database_url or ""
            if not url.startswith("postgresql"):
                raise ValueError(
                    "cache.backend: pgvector needs a PostgreSQL cache.database_url "
                    "(or database_url)"
                )
        ids = [m.id for m in self.models if m.id]
        duplicates = {i for i in ids if ids.count(i) > 1}
        if duplicates:
            raise ValueError(f"duplicate deployment id: {', '.join(sorted(duplicates))}")
        return self

    @property
    def model_names(self) -> list[str]:
        """Client-visible model names, in first-seen order."""
        return list(dict.fromkeys(m.name for m in self.models))
