"""The router: pick a deployment, retry, cool down, and fall back along a chain of models.

One request gets one budget: at most ``max_attempts`` upstream attempts and ``timeout``
seconds across its whole fallback chain. Within a model, a failed attempt moves at once to a
deployment not yet tried; when every deployment has been tried, the router waits (exponential
backoff with jitter, or the upstream's ``Retry-After``) before retrying, at most ``retries``
times, and then moves down the chain. Fallbacks are followed transitively, each model at most
once, so a chain cannot loop.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from stackyard.auth.limits import RateLimiter
from stackyard.auth.principal import Limit
from stackyard.config.schema import ModelEntry, RouterConfig
from stackyard.errors import APIError, invalid_request, model_not_found
from stackyard.gateway.deployment import Deployment
from stackyard.gateway.health import Health
from stackyard.gateway.providers.base import Provider, UpstreamError
from stackyard.gateway.quotas import LocalQuotas, Quotas
from stackyard.gateway.strategies import STRATEGIES

T = TypeVar("T")


@dataclass(slots=True)
class Attempt:
    """One upstream attempt, for the request's trace (times in epoch nanoseconds)."""

    deployment: Deployment
    start_ns: int
    end_ns: int
    error: UpstreamError | None = None


@dataclass(slots=True)
class RouteStats:
    """What routing one request did; filled in as it goes, also when it fails."""

    attempts: int = 0
    #: Seconds spent waiting on upstreams and backoff (the rest is gateway overhead).
    waited: float = 0.0
    deployment: Deployment | None = None
    errors: list[tuple[str, UpstreamError]] = field(default_factory=list)
    tried: list[Attempt] = field(default_factory=list)


@dataclass(slots=True)
class Routed(Generic[T]):
    result: T
    deployment: Deployment


def backoff_delay(config: RouterConfig, retry: int, rng: random.Random) -> float:
    """Exponential backoff for the ``retry``-th retry (0-based), with +/- jitter."""
    b = config.backoff
    delay = min(b.max, b.initial * b.multiplier**retry)
    return max(0.0, delay * (1 + b.jitter * (2 * rng.random() - 1)))


class Router:
    def __init__(
        self,
        entries: Sequence[ModelEntry],
        providers: Sequence[Provider],
        config: RouterConfig,
        *,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.rng = rng or random.Random()
        self.clock = clock
        self._pick = STRATEGIES[config.strategy]
        self.deployments: dict[str, list[Deployment]] = {}
        for index, (entry, provider) in enumerate(zip(entries, providers, strict=True)):
            health = Health(
                allowed_fails=config.cooldown.allowed_fails,
                window=config.cooldown.window,
                cooldown=config.cooldown.duration,
            )
            deployment = Deployment(
                id=entry.id or f"{entry.name}#{index}",
                name=entry.name,
                entry=entry,
                provider=provider,
                health=health,
                weight=entry.weight,
            )
            self.deployments.setdefault(entry.name, []).append(deployment)
        self._chains = {name: self._chain(name) for name in self.deployments}
        #: Asked about a model name no deployment serves; True if it added one.
        self.discover: Callable[[str], bool] | None = None
        #: Deployment quotas (``rpm``/``tpm`` in the config): counted in this worker until
        #: :meth:`share_quotas` hands them to Redis.
        self.quotas: Quotas = LocalQuotas(RateLimiter(clock=clock))
        self._quota: dict[int, Limit] = {
            id(d): Limit("deployment", d.id, d.entry.rpm, d.entry.tpm)
            for d in self.all_deployments()
            if d.entry.rpm or d.entry.tpm
        }

    def share_quotas(self, quotas: Quotas) -> None:
        """Count deployment quotas with ``quotas`` (shared by every instance) from now on."""
        self.quotas = quotas

    def add(self, entry: ModelEntry, provider: Provider) -> Deployment:
        """Serve a new model from now on (a fine-tuned model, say), without a restart."""
        if entry.name in self.deployments:
            raise ValueError(f"a model named '{entry.name}' exists")
        config = self.config
        deployment = Deployment(
            id=entry.id or f"{entry.name}#0",
            name=entry.name,
            entry=entry,
            provider=provider,
            health=Health(
                allowed_fails=config.cooldown.allowed_fails,
                window=config.cooldown.window,
                cooldown=config.cooldown.duration,
            ),
            weight=entry.weight,
        )
        self.deployments[entry.name] = [deployment]
        self._chains[entry.name] = self._chain(entry.name)
        return deployment

    def remove(self, name: str) -> list[Deployment]:
        """Serve ``name`` no more (a deleted fine-tuned model); its deployments, for the
        caller to close. Requests already routed to them finish."""
        removed = self.deployments.pop(name, [])
        if removed:
            self._chains = {model: self._chain(model) for model in self.deployments}
            for deployment in removed:
                self._quota.pop(id(deployment), None)
        return removed

    @property
    def model_names(self) -> list[str]:
        return list(self.deployments)

    def count_tokens(self, deployment: Deployment | None, tokens: int) -> None:
        """Charge a deployment's tokens-per-minute quota with what a request really used."""
        quota = self._quota.get(id(deployment)) if deployment is not None else None
        if quota is not None and tokens:
            self.quotas.charge_tokens(quota, tokens)

    def all_deployments(self) -> Iterable[Deployment]:
        for group in self.deployments.values():
            yield from group

    def _chain(self, model: str) -> tuple[str, ...]:
        order = [model]
        i = 0
        while i < len(order):
            for name in self.config.fallbacks.get(order[i], ()):
                if name not in order and name in self.deployments:
                    order.append(name)
            i += 1
        return tuple(order)

    def chain(self, model: object) -> tuple[str, ...]:
        """The models to try for ``model``, in order. Raises 404 for an unknown model."""
        found = self._chains.get(model) if isinstance(model, str) else None
        # A model that may have appeared since (a fine-tuning job that just succeeded): only
        # unknown names pay for the look.
        discover = self.discover
        if found is None and isinstance(model, str) and discover is not None and discover(model):
            found = self._chains.get(model)
        if found is None:
            raise model_not_found(model, self.model_names)
        return found

    def _timeout(self, deployment: Deployment, stream: bool) -> float:
        entry = deployment.entry
        if stream:
            return entry.ttft_timeout or self.config.ttft_timeout
        return entry.timeout or self.config.attempt_timeout

    async def run(
        self,
        model: object,
        attempt: Callable[[Deployment], Awaitable[T]],
        *,
        stats: RouteStats,
        stream: bool = False,
        supports: Callable[[Deployment], bool] | None = None,
        operation: str = "chat completions",
        fallbacks: bool = True,
    ) -> Routed[T]:
        """Call ``attempt`` on deployments until one succeeds; raise an :class:`APIError`
        carrying the last upstream failure when the budget is spent. ``fallbacks=False``
        keeps to the model asked for (an answer about another model would be wrong)."""
        chain = self.chain(model)
        if not fallbacks:
            chain = chain[:1]
        config = self.config
        clock = self.clock
        deadline = clock() + config.timeout
        supported_anywhere = False
        full: dict[int, tuple[str, int]] = {}  # deployments out of quota: id, seconds to wait
        for name in chain:
            group = self.deployments[name]
            if supports is not None:
                group = [d for d in group if supports(d)]
            if not group:
                continue
            supported_anywhere = True
            tried: set[int] = set()
            excluded: set[int] = set()
            retries_left = config.retries
            while stats.attempts < config.max_attempts:
                now = clock()
                ready = [
                    d
                    for d in group
                    if id(d) not in excluded and id(d) not in full and d.health.available(now)
                ]
                if not ready:
                    break
                fresh = [d for d in ready if id(d) not in tried]
                deployment = self._pick(fresh or ready, self.rng)
                left = deadline - now
                if left <= 0:
                    break
                quota = self._quota.get(id(deployment))
                if quota is not None:
                    refill = await self.quotas.take(quota)
                    if refill is not None:  # this minute's quota is used: another one, or on
                        full[id(deployment)] = (deployment.id, refill)
                        continue
                stats.attempts += 1
                stats.deployment = deployment
                deployment.outstanding += 1
                started = clock()
                start_ns = time.time_ns()
                try:
                    async with asyncio.timeout(min(left, self._timeout(deployment, stream))):
                        result = await attempt(deployment)
                except UpstreamError as exc:
                    error = exc
                except TimeoutError:
                    error = UpstreamError("timeout", f"deployment {deployment.id} timed out")
                else:
                    elapsed = clock() - started
                    stats.waited += elapsed
                    stats.tried.append(Attempt(deployment, start_ns, time.time_ns()))
                    deployment.health.record_success(elapsed, config.latency_ewma_alpha)
                    return Routed(result, deployment)
                finally:
                    deployment.outstanding -= 1
                stats.waited += clock() - started
                stats.errors.append((deployment.id, error))
                stats.tried.append(Attempt(deployment, start_ns, time.time_ns(), error))
                if error.kind == "client":
                    raise _client_error(error)
                if error.cooldown:
                    deployment.health.record_failure(clock(), error.retry_after)
                tried.add(id(deployment))
                if not error.retryable:
                    excluded.add(id(deployment))
                    continue
                if any(id(d) not in tried for d in ready):
                    continue  # another deployment of this model is ready: no wait
                if retries_left == 0:
                    break
                retries_left -= 1
                wait = error.retry_after
                if wait is None:
                    wait = backoff_delay(config, config.retries - retries_left - 1, self.rng)
                if wait > config.max_retry_wait or clock() + wait >= deadline:
                    break
                if wait > 0:
                    slept = clock()
                    await asyncio.sleep(wait)
                    stats.waited += clock() - slept
        if not supported_anywhere:
            raise invalid_request(
                f"The model '{model}' does not support {operation}.",
                param="model",
                code="unsupported_operation",
            )
        raise self._exhausted(chain, stats, supports, list(full.values()))

    def _exhausted(
        self,
        chain: tuple[str, ...],
        stats: RouteStats,
        supports: Callable[[Deployment], bool] | None,
        full: list[tuple[str, int]],
    ) -> APIError:
        route = " -> ".join(chain)
        now = self.clock()
        cooling = [
            d.health.cooling_until - now
            for name in chain
            for d in self.deployments[name]
            if (supports is None or supports(d)) and not d.health.available(now)
        ]
        retry_after = [("retry-after", str(max(1, math.ceil(min(cooling)))))] if cooling else []
        if not stats.errors and full and not cooling:
            return APIError(
                429,
                f"Every deployment of {route} has used its quota for this minute "
                f"({', '.join(name for name, _ in full)}).",
                type="requests",
                code="deployment_quota_exceeded",
                headers=[("retry-after", str(min(wait for _, wait in full)))],
            )
        if not stats.errors:
            return APIError(
                503,
                f"No deployment is available for {route}: all are cooling down after "
                "recent failures.",
                type="server_error",
                code="no_deployment_available",
                headers=retry_after,
            )
        deployment_id, last = stats.errors[-1]
        message = (
            f"{stats.attempts} attempt(s) failed for {route}; last, deployment "
            f"{deployment_id}: {last.message}"
        )
        if last.kind == "timeout":
            return APIError(504, message, type="timeout_error", code="upstream_timeout")
        if last.kind == "rate_limited":
            if last.retry_after is not None and not retry_after:
                retry_after = [("retry-after", str(max(1, math.ceil(last.retry_after))))]
            if last.client_status is not None:  # e.g. a full in-process engine: a plain 429
                return APIError(
                    last.client_status,
                    message,
                    type="rate_limit_error",
                    code=last.code,
                    headers=retry_after,
                )
            return APIError(
                503,
                message,
                type="server_error",
                code="upstream_rate_limited",
                headers=retry_after,
            )
        return APIError(502, message, type="server_error", code="upstream_error")

    async def aclose(self) -> None:
        for deployment in self.all_deployments():
            await deployment.provider.aclose()


def _client_error(error: UpstreamError) -> APIError:
    """An upstream's verdict that the request itself is wrong, passed on to the client."""
    return APIError(
        error.status or 400,
        error.message,
        type=error.error_type or "invalid_request_error",
        param=error.param,
        code=error.code,
    )
