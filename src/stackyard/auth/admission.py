"""Admission and settlement of one request: who calls, may they use this model, do their
rate limits and budgets allow it; afterwards, what it cost, reconciled and logged.

Everything here reads memory only; the spend row goes on the writer's queue.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from stackyard.auth.budgets import BudgetBook, Overspend
from stackyard.auth.keys import hash_key
from stackyard.auth.leases import LeasedCounters, LeaseReservation
from stackyard.auth.limits import RateLimiter, Refusal, Reservation
from stackyard.auth.principal import MASTER, OPEN, Budget, Principal
from stackyard.auth.snapshot import KeySnapshot
from stackyard.errors import APIError
from stackyard.gateway.costs import Price, price_for
from stackyard.gateway.deployment import Deployment
from stackyard.gateway.router import Router
from stackyard.gateway.token_counts import count_prompt, counter_for
from stackyard.guardrails.audit import details
from stackyard.observability.recorder import Recorder
from stackyard.observability.spans import RequestTrace
from stackyard.server.http import Request
from stackyard.store.audit_writer import AuditWriter
from stackyard.store.spend_writer import SpendWriter

if TYPE_CHECKING:
    from stackyard.gateway.router import RouteStats

log = logging.getLogger("stackyard.auth")

#: The scope entry through which the console calls the APIs in process as the principal of
#: its session. Only code can set it: an HTTP request's scope is built by the server.
PRINCIPAL_SCOPE = "stackyard.principal"
#: ``scope`` key: a request the gateway makes itself in the background (a batch's line), not
#: counted among the interactive requests in flight.
BACKGROUND_SCOPE = "stackyard.background"

DEFAULT_MAX_TOKENS = 1024  # assumed for budgets and token limits when a request sets none


def requested_max_tokens(body: dict[str, Any], endpoint: str) -> int:
    if endpoint in ("embeddings", "rerank"):
        return 0
    value = body.get("max_completion_tokens") or body.get("max_tokens")
    return int(value) if isinstance(value, int) else DEFAULT_MAX_TOKENS


@dataclass(slots=True)
class Ticket:
    principal: Principal
    model: str
    endpoint: str
    request_id: str
    started: float
    reservation: Reservation | None = None
    shared: LeaseReservation | None = None
    reserved_usd: float = 0.0
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    done: bool = False
    trace: RequestTrace | None = None
    #: What the guardrails decided: (rail, action, detail or a function giving it).
    decisions: list[tuple[str, str, Any]] = field(default_factory=list)
    #: Texts the injection rail read with the embedding model, kept for PII redaction's
    #: entity tagger (only when it will run), so that the model reads each text once.
    readings: dict[str, Any] = field(default_factory=dict)
    #: Counted in :attr:`Governance.interactive` until settled (not a batch's line).
    interactive: bool = False


class Governance:
    def __init__(
        self,
        router: Router,
        snapshot: KeySnapshot | None,
        writer: SpendWriter | None,
        *,
        master_key: str | None,
        budgets: BudgetBook | None = None,
        shared: LeasedCounters | None = None,
        recorder: Recorder | None = None,
        audit: AuditWriter | None = None,
        redis_outage: str = "open",
    ) -> None:
        self.audit = audit
        self.redis_outage = redis_outage
        self.router = router
        self.recorder = recorder
        #: Interactive requests admitted and not yet settled on this instance (a batch's lines
        #: wait while there are many).
        self.interactive = 0
        self.shared = shared
        self.snapshot = snapshot
        self.writer = writer
        self.master_key = master_key or None
        self.limiter = RateLimiter()
        self.budgets = budgets or BudgetBook()
        timeout = router.config.attempt_timeout
        self._prices = {d.id: price_for(d.entry, timeout) for d in router.all_deployments()}
        #: Each model's prompt counter: its first deployment's tokenizer, or tiktoken's.
        self._counters = {
            name: counter_for(group[0].provider) for name, group in router.deployments.items()
        }
        self._model_prices = {  # a model's dearest deployment, for budget reservations
            name: max(
                (self._prices[d.id] for d in group),
                key=lambda p: (p.input, p.output, p.per_second * p.most_seconds),
            )
            for name, group in router.deployments.items()
        }

    @property
    def open(self) -> bool:
        """No master key and no virtual key: anyone may call (loopback only; see the CLI)."""
        return self.master_key is None and not (self.snapshot and self.snapshot.keys)

    def price(self, deployment: Deployment | None) -> Price:
        return self._prices.get(deployment.id, Price()) if deployment else Price()

    def authenticate(self, request: Request) -> Principal:
        injected = request.scope.get(PRINCIPAL_SCOPE)
        if isinstance(injected, Principal):  # the console's own calls, for its session
            return injected
        token = bearer_token(request)
        if token is not None and self.master_key and hmac.compare_digest(token, self.master_key):
            return MASTER
        keys = self.snapshot.keys if self.snapshot else {}
        principal = keys.get(hash_key(token)) if token else None
        if principal is None:
            if self.open:
                return OPEN
            message = (
                "Incorrect API key provided."
                if token
                else "Missing API key: send it as "
                "'Authorization: Bearer KEY' (or 'x-api-key: KEY')."
            )
            raise APIError(401, message, type="invalid_request_error", code="invalid_api_key")
        if principal.expires_at is not None and time.time() >= principal.expires_at:
            raise APIError(401, "This API key has expired.", code="expired_api_key")
        return principal

    def current(self, who: str | None, key: Principal | None = None) -> Principal | None:
        """Who a caller recorded earlier is now (a console session, a batch): ``who`` is
        "master", None for an open gateway's caller, or a key, given as ``key`` (its principal
        as recorded) or found by its id. None once the key is revoked or has expired, the
        master key is no longer the server's, or the gateway is no longer open."""
        if who == "master":
            return MASTER if self.master_key else None
        if who is None:
            return OPEN if self.open else None
        if key is None:
            keys = self.snapshot.keys.values() if self.snapshot else ()
            key = next((p for p in keys if p.key_id == who), None)
        if key is None or (key.expires_at is not None and time.time() >= key.expires_at):
            return None
        return key

    def require_master(self, request: Request) -> None:
        principal = self.authenticate(request)
        if not principal.master:
            raise APIError(
                403 if principal is not OPEN or self.master_key else 401,
                "The admin API needs the master key (server started with auth.master_key or "
                "STACKYARD_MASTER_KEY).",
                type="permission_error",
                code="master_key_required",
            )

    async def admit(
        self,
        request: Request,
        body: dict[str, Any],
        *,
        endpoint: str,
        principal: Principal | None = None,
    ) -> Ticket:
        """Admit the request (or raise the refusal), opening its trace. A caller without a
        valid key is refused first, with nothing recorded: a trace, and what it costs to
        store, is for callers the gateway knows (``principal``, if already authenticated)."""
        if principal is None:
            principal = self.authenticate(request)
        recorder = self.recorder
        if recorder is None:
            return self._count(await self._admit(principal, request, body, endpoint), request)
        trace = recorder.start(request, body, endpoint)
        started = time.time_ns()
        try:
            ticket = await self._admit(principal, request, body, endpoint)
        except APIError as exc:
            trace.child("gateway.admission", started).fail(exc.message, exc.code)
            recorder.finish(trace, principal, status=exc.status, error=exc)
            raise
        trace.child("gateway.admission", started)
        ticket.trace = trace
        return self._count(ticket, request)

    def _count(self, ticket: Ticket, request: Request) -> Ticket:
        if not request.scope.get(BACKGROUND_SCOPE):
            ticket.interactive = True
            self.interactive += 1
        return ticket

    async def _admit(
        self, principal: Principal, request: Request, body: dict[str, Any], endpoint: str
    ) -> Ticket:
        model = str(body.get("model"))
        if principal.models is not None and model not in principal.models:
            allowed = ", ".join(sorted(principal.models)) or "none"
            raise APIError(
                403,
                f"This key may not use the model '{model}'. Allowed: {allowed}.",
                type="permission_error",
                param="model",
                code="model_not_allowed",
            )
        ticket = Ticket(principal, model, endpoint, request.request_id, time.perf_counter())
        if not principal.limits and not principal.budgets:
            return ticket
        prompt = self._count_prompt(model, body)
        most_out = requested_max_tokens(body, endpoint)
        if self.shared is not None:
            await self._admit_shared(ticket, prompt, most_out)
            return ticket
        if principal.limits:
            outcome = self.limiter.admit(principal.limits, prompt + most_out)
            if isinstance(outcome, Refusal):
                raise _rate_limited(outcome)
            ticket.reservation = outcome
            ticket.headers = outcome.headers
        if principal.budgets:
            price = self._model_prices.get(model, Price())
            most = price.most(prompt, most_out)
            over = self.budgets.reserve(principal.budgets, most)
            if over is not None:
                if ticket.reservation is not None:
                    self.limiter.reconcile(ticket.reservation, 0)
                raise _over_budget(over.budget, over.spent, most)
            ticket.reserved_usd = most
        return ticket

    def _count_prompt(self, model: str, body: dict[str, Any]) -> int:
        counter = self._counters.get(model)
        if counter is None:  # a model added since (a fine-tuned one): count as its provider does
            group = self.router.deployments.get(model)
            if not group:
                return count_prompt(body)
            counter = self._counters[model] = counter_for(group[0].provider)
        return counter(body)

    async def _admit_shared(self, ticket: Ticket, prompt: int, most_out: int) -> None:
        assert self.shared is not None
        principal = ticket.principal
        most = 0.0
        hard = principal.hard_budgets  # soft ones never refuse
        if not principal.limits and not hard:
            return
        if hard:
            most = self._model_prices.get(ticket.model, Price()).most(prompt, most_out)
        try:
            outcome = await self.shared.admit(principal.limits, prompt + most_out, hard, most)
        except Exception as exc:  # Redis away: as auth.redis_outage says
            if self.redis_outage == "closed":
                log.error("shared limits unavailable (%s); refusing %s", exc, ticket.request_id)
                raise APIError(
                    503,
                    "Shared limits and budgets cannot be checked now (Redis is unavailable), "
                    "and this gateway refuses requests it cannot check (auth.redis_outage: "
                    "closed). Try again shortly.",
                    type="server_error",
                    code="limits_unavailable",
                    headers=[("retry-after", "5")],
                ) from None
            log.exception("shared limits unavailable; admitting request %s", ticket.request_id)
            return
        if isinstance(outcome, Refusal):
            raise _rate_limited(outcome)
        if isinstance(outcome, Overspend):
            raise _over_budget(outcome.budget, outcome.spent, most)
        ticket.shared = outcome
        ticket.headers = outcome.headers

    async def abandon(
        self, ticket: Ticket, reason: BaseException, stats: RouteStats | None = None
    ) -> None:
        """Settle a request that ended in neither an answer nor an API error: a bug, or the
        client gone (a cancellation). Its reservations are released and its trace closed, so
        that nothing it held stays held until a restart."""
        if ticket.done:
            return
        cancelled = isinstance(reason, asyncio.CancelledError)
        status = 499 if cancelled else 500
        error = APIError(
            status,
            "The client went away." if cancelled else f"{type(reason).__name__}",
            type="server_error",
            code="client_closed" if cancelled else "internal_error",
        )
        try:
            await self.finish(
                ticket, status=status, usage=None, deployment=None, stats=stats, error=error
            )
        except Exception:
            log.exception("could not settle request %s", ticket.request_id)

    async def finish(
        self,
        ticket: Ticket,
        *,
        status: int,
        usage: dict[str, Any] | None,
        deployment: Deployment | None,
        cache_hit: bool = False,
        stats: RouteStats | None = None,
        error: APIError | None = None,
        response: dict[str, Any] | None = None,
        cost: float | None = None,
    ) -> float:
        """Settle limits and budgets with the real usage, log the spend, close the trace;
        return the cost (``cost`` when given: an answer from the cache has its own price)."""
        if ticket.done:
            return 0.0
        ticket.done = True
        if ticket.interactive:
            self.interactive -= 1
        if cost is None:  # a price by time charges the request's whole time on the gateway
            cost = self.price(deployment).cost(usage, time.perf_counter() - ticket.started)
        if ticket.trace is not None and self.recorder is not None:
            if response is not None:
                ticket.trace.response = response
            self.recorder.finish(
                ticket.trace,
                ticket.principal,
                status=status,
                usage=usage,
                deployment=deployment,
                cost=cost,
                stats=stats,
                error=error,
                cache_hit=cache_hit,
            )
        prompt = int((usage or {}).get("prompt_tokens") or 0)
        completion = int((usage or {}).get("completion_tokens") or 0)
        principal = ticket.principal
        self.router.count_tokens(deployment, prompt + completion)
        if ticket.reservation is not None:
            self.limiter.reconcile(ticket.reservation, prompt + completion)
        if ticket.shared is not None and self.shared is not None:
            try:
                await self.shared.settle(ticket.shared, prompt + completion, cost)
            except Exception:
                log.exception("could not settle request %s in Redis", ticket.request_id)
            soft = [b for b in principal.budgets if b.soft]
            if soft:  # tracked here, for their alerts (per instance)
                self.budgets.settle(soft, 0.0, cost)
        elif principal.budgets:
            self.budgets.settle(principal.budgets, ticket.reserved_usd, cost)
        if ticket.decisions and self.audit is not None:
            await self._audit(ticket, principal)
        if self.writer is not None:
            await self.writer.put(
                (  # in SpendWriter's COLUMNS order
                    ticket.request_id,
                    time.time(),
                    principal.key_id,
                    principal.team_id,
                    principal.user_id,
                    principal.organization_id,
                    ticket.model,
                    deployment.id if deployment else None,
                    ticket.endpoint,
                    prompt,
                    completion,
                    cost,
                    (time.perf_counter() - ticket.started) * 1000,
                    status,
                    cache_hit,
                    os.urandom(16).hex(),  # entry_id: the journal's replay writes it once
                )
            )
        return cost

    async def _audit(self, ticket: Ticket, principal: Principal) -> None:
        """The guardrails' decisions on this request, to the audit log."""
        assert self.audit is not None
        now = time.time()
        for rail, action, detail in details(ticket):
            await self.audit.put(
                (  # in AuditWriter's COLUMNS order
                    ticket.request_id,
                    now,
                    principal.team_id,
                    principal.key_id,
                    ticket.model,
                    ticket.endpoint,
                    rail,
                    action,
                    detail,
                )
            )


def _rate_limited(refusal: Refusal) -> APIError:
    return APIError(
        429,
        f"Rate limit reached for {refusal.scope}: {refusal.limit} {refusal.kind} per minute. "
        f"Try again in {refusal.retry_after} s.",
        type=refusal.kind,
        code="rate_limit_exceeded",
        # As on a success, and as OpenAI sends them on its own 429s.
        headers=[
            ("retry-after", str(refusal.retry_after)),
            (f"x-ratelimit-limit-{refusal.kind}", str(refusal.limit)),
            (f"x-ratelimit-remaining-{refusal.kind}", "0"),
            (f"x-ratelimit-reset-{refusal.kind}", f"{refusal.retry_after}s"),
        ],
    )


def _over_budget(budget: Budget, spent: float, most: float) -> APIError:
    if spent >= budget.usd:
        message = (
            f"Budget exhausted for {budget.scope} {budget.id}: ${spent:.4f} spent of "
            f"${budget.usd:.2f} this {budget.period}."
        )
    else:  # what is left cannot hold this request's worst case beside those in flight
        message = (
            f"Budget exceeded for {budget.scope} {budget.id}: ${spent:.4f} spent of "
            f"${budget.usd:.2f} this {budget.period}, and this request could cost up to "
            f"${most:.4f} (its prompt and max tokens at the model's price) beside the "
            "requests in flight; ask for fewer max tokens, or wait for those to finish."
        )
    return APIError(429, message, type="insufficient_quota", code="budget_exceeded")


def bearer_token(request: Request) -> str | None:
    """The key a request carries (``Authorization: Bearer`` or ``x-api-key``), if any."""
    header = request.header(b"authorization")
    if header:
        scheme, _, value = header.decode("latin-1").partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    api_key = request.header(b"x-api-key")
    return api_key.decode("latin-1").strip() if api_key else None
