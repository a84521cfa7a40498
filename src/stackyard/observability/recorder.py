"""The recorder: opens a request's trace, closes it with what happened, counts it in the
metrics, and hands it to the trace writer and the OTLP exporter. Memory only: nothing here
waits on a database or the network."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from stackyard.config.schema import ObservabilityConfig
from stackyard.errors import APIError
from stackyard.observability import semconv
from stackyard.observability.context import client_context
from stackyard.observability.metrics import Counter, GatewayMetrics
from stackyard.observability.spans import CLIENT, SERVER, RequestTrace, Span, new_span_id
from stackyard.observability.spans import new_trace_id as _new_trace_id
from stackyard.observability.writer import Finished
from stackyard.server.http import Request

if TYPE_CHECKING:
    from stackyard.auth.principal import Principal
    from stackyard.gateway.deployment import Deployment
    from stackyard.gateway.router import RouteStats

#: Refusals counted as rate-limit rejections.
REJECTIONS = {"rate_limit_exceeded", "budget_exceeded", "deployment_quota_exceeded"}


class Sink(Protocol):
    def offer(self, row: Finished) -> bool: ...


class Recorder:
    def __init__(
        self,
        config: ObservabilityConfig | None = None,
        *,
        metrics: GatewayMetrics | None = None,
        writer: Sink | None = None,
        exporter: Sink | None = None,
        rng: random.Random | None = None,
        team_names: Callable[[], dict[str, str]] | None = None,
    ) -> None:
        self.config = config or ObservabilityConfig()
        #: Team id -> name, for per-team settings given by name.
        self.team_names = team_names or dict
        self.metrics = metrics or GatewayMetrics()
        self.writer = writer
        self.exporter = exporter
        self.rng = rng or random.Random()
        self.key_requests = None
        if self.config.metrics_key_labels:
            self.key_requests = Counter(
                "stackyard_key_requests_total", "Requests answered, by key.", ("key", "status")
            )
            self.metrics.registry.add(self.key_requests)

    def start(self, request: Request, body: dict[str, Any], endpoint: str) -> RequestTrace:
        """A new trace; raises a 400 for a malformed tracing header."""
        client = client_context(request)
        model = str(body.get("model"))
        attributes = semconv.request_attributes(endpoint, body)
        root = Span(
            f"{semconv.operation(endpoint)} {model}",
            new_span_id(),
            client.parent_span_id,
            time.time_ns(),
            kind=SERVER,
            attributes=attributes,
        )
        return RequestTrace(
            request_id=request.request_id,
            trace_id=client.trace_id or _new_trace_id(),
            root=root,
            endpoint=endpoint,
            model=model,
            body=body,
            session_id=client.session_id,
            metadata=client.metadata,
            tags=client.tags,
            stream=bool(body.get("stream")),
        )

    def policy(self, team_id: str | None) -> tuple[str, float]:
        """(bodies mode, sample rate) for a team."""
        config = self.config
        override = None
        if team_id and config.teams:
            override = config.teams.get(team_id) or config.teams.get(
                self.team_names().get(team_id, "")
            )
        bodies = (override.bodies if override else None) or config.bodies
        rate = override.sample_rate if override and override.sample_rate is not None else None
        return bodies, config.sample_rate if rate is None else rate

    def finish(
        self,
        trace: RequestTrace,
        principal: Principal | None,
        *,
        status: int,
        usage: dict[str, Any] | None = None,
        deployment: Deployment | None = None,
        cost: float = 0.0,
        stats: RouteStats | None = None,
        error: APIError | None = None,
        cache_hit: bool = False,
    ) -> None:
        now = time.time_ns()
        root = trace.root
        root.end_ns = now
        input_tokens, output_tokens = semconv.usage_tokens(usage)
        attributes = root.attributes
        attributes["http.response.status_code"] = status
        attributes["stackyard.request_id"] = trace.request_id
        if trace.response is not None:
            trace.finish_reasons = trace.finish_reasons or semconv.finish_reasons(trace.response)
            model = trace.response.get("model")
            trace.response_model = trace.response_model or (str(model) if model else None)
        if trace.response is not None and isinstance(trace.response.get("id"), str):
            attributes["gen_ai.response.id"] = trace.response["id"]
        if trace.response_model:
            attributes["gen_ai.response.model"] = trace.response_model
        if trace.finish_reasons:
            attributes["gen_ai.response.finish_reasons"] = trace.finish_reasons
        if usage:
            attributes["gen_ai.usage.input_tokens"] = input_tokens
            attributes["gen_ai.usage.output_tokens"] = output_tokens
        attributes["stackyard.cost_usd"] = cost
        attributes["stackyard.cache.hit"] = cache_hit
        if cache_hit and trace.cache_tier:
            attributes["stackyard.cache.tier"] = trace.cache_tier
            attributes["stackyard.cache.saved_usd"] = trace.cache_saved_usd
        if deployment is not None:
            attributes["stackyard.deployment"] = deployment.id
            attributes["gen_ai.provider.name"] = semconv.provider_name(deployment.entry.provider)
        if principal is not None:
            for name, value in (
                ("stackyard.key_id", principal.key_id),
                ("stackyard.team_id", principal.team_id),
                ("stackyard.user_id", principal.user_id),
            ):
                if value:
                    attributes[name] = value
        if trace.session_id:
            attributes["session.id"] = trace.session_id
        if trace.tags:
            attributes["stackyard.tags"] = trace.tags
        if trace.prompt_name:
            attributes["stackyard.prompt.name"] = trace.prompt_name
            attributes["stackyard.prompt.version"] = trace.prompt_version
        if trace.first_chunk_ns is not None:
            ttft = (trace.first_chunk_ns - root.start_ns) / 1e9
            attributes["gen_ai.response.time_to_first_chunk"] = ttft
            attributes["stackyard.time_to_first_chunk_ms"] = ttft * 1000
            root.events.append(("stackyard.first_chunk", trace.first_chunk_ns, {}))
        error_code = None
        if error is not None:
            error_code = error.code or error.type
            root.fail(error.message, error_code)
        elif status >= 400:
            error_code = f"http_{status}"
            root.fail(f"status {status}", error_code)
        attempts = self._attempt_spans(trace, stats, now)
        self._count(trace, principal, status, deployment, error_code, usage, cost, cache_hit)
        if stats is not None and len(stats.tried) > 1:
            self.metrics.retries.inc(trace.model, by=len(stats.tried) - 1)
        if deployment is not None and deployment.name != trace.model:
            self.metrics.fallbacks.inc(trace.model, deployment.name)
        team_id = principal.team_id if principal else None
        bodies, rate = self.policy(team_id)
        done = Finished(
            trace,
            principal.key_id if principal else None,
            team_id,
            principal.user_id if principal else None,
            status,
            error_code,
            deployment.id if deployment else None,
            semconv.provider_name(deployment.entry.provider) if deployment else None,
            input_tokens,
            output_tokens,
            cost,
            cache_hit,
            attempts,
            bodies if bodies != "full" or rate >= 1 or self.rng.random() < rate else "sampled-out",
        )
        if self.exporter is not None:
            self.exporter.offer(done)
        if bodies == "off" or self.writer is None:
            return
        if not self.writer.offer(done):
            self.metrics.traces_dropped.inc()

    def _attempt_spans(self, trace: RequestTrace, stats: RouteStats | None, now: int) -> int:
        if stats is None:
            return 0
        operation = semconv.operation(trace.endpoint)
        last = len(stats.tried) - 1
        for index, attempt in enumerate(stats.tried):
            deployment = attempt.deployment
            entry = deployment.entry
            upstream_model = entry.model or entry.name
            end = attempt.end_ns
            if attempt.error is None and index == last and trace.stream:
                end = now  # a stream's attempt lasts until its last chunk
            span = trace.child(
                f"{operation} {upstream_model}",
                attempt.start_ns,
                end,
                **{
                    "gen_ai.operation.name": operation,
                    "gen_ai.provider.name": semconv.provider_name(entry.provider),
                    "gen_ai.request.model": upstream_model,
                    "stackyard.deployment": deployment.id,
                    "stackyard.model": deployment.name,
                    "stackyard.attempt": index + 1,
                    "stackyard.fallback": deployment.name != trace.model,
                },
            )
            span.kind = CLIENT
            if entry.api_base:
                span.attributes["server.address"] = entry.api_base
            if attempt.error is not None:
                span.fail(attempt.error.message, attempt.error.kind)
        return len(stats.tried)

    def _count(
        self,
        trace: RequestTrace,
        principal: Principal | None,
        status: int,
        deployment: Deployment | None,
        error_code: str | None,
        usage: dict[str, Any] | None,
        cost: float,
        cache_hit: bool,
    ) -> None:
        m = self.metrics
        model = trace.model
        team = (principal.team_id if principal else None) or ""
        deployment_id = deployment.id if deployment else ""
        m.requests.inc(trace.endpoint, model, deployment_id, team, str(status))
        seconds = (trace.root.end_ns - trace.root.start_ns) / 1e9
        m.latency.observe(seconds, trace.endpoint, model, team)
        if trace.first_chunk_ns is not None:
            m.ttft.observe((trace.first_chunk_ns - trace.root.start_ns) / 1e9, model, deployment_id)
        if error_code is not None:
            m.errors.inc(model, error_code)
            if error_code in REJECTIONS:
                m.rejections.inc(team, error_code)
        if usage:
            prompt, completion = semconv.usage_tokens(usage)
            m.tokens.inc(model, team, "input", by=prompt)
            m.tokens.inc(model, team, "output", by=completion)
        if cost:
            m.cost.inc(model, team, by=cost)
        if cache_hit:
            m.cache_hits.inc(model, team)
        if self.key_requests is not None and principal is not None:
            self.key_requests.inc(principal.key_id or "", str(status))
