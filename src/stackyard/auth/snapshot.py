"""Keys, users, teams and organisations as an in-memory snapshot: the request path reads a
dict, never the database. A background task reloads the snapshot when the tables change
(polled twice a second, so a revocation reaches every instance within a second)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import func, select

from stackyard.auth.principal import Budget, Limit, Principal
from stackyard.store.db import Database
from stackyard.store.tables import Organization, Team, User, VirtualKey
from stackyard.store.tables.base import Governed, aware

log = logging.getLogger("stackyard.auth")


def _narrow(*lists: list[str] | None) -> frozenset[str] | None:
    """The models every level allows (None: every level allows all)."""
    allowed: frozenset[str] | None = None
    for models in lists:
        if models is not None:
            allowed = frozenset(models) if allowed is None else allowed & frozenset(models)
    return allowed


def _controls(
    scope: str, owner: Governed | None, owner_id: str | None
) -> tuple[list[Limit], list[Budget]]:
    """One level's rate limits and budget."""
    if owner is None or owner_id is None:
        return [], []
    limits = [Limit(scope, owner_id, owner.rpm, owner.tpm)] if owner.rpm or owner.tpm else []
    budgets = []
    if owner.budget_usd is not None:
        budgets.append(
            Budget(scope, owner_id, owner.budget_usd, owner.budget_period, owner.budget_soft)
        )
    return limits, budgets


class KeySnapshot:
    def __init__(self, db: Database, *, refresh_seconds: float = 0.5) -> None:
        self.db = db
        self.refresh_seconds = refresh_seconds
        self.keys: dict[str, Principal] = {}
        #: Team id -> name (per-team settings in the config may name a team either way).
        self.team_names: dict[str, str] = {}
        #: Key id -> name, for the keys that have one (guardrail policies may name a key).
        self.key_names: dict[str, str] = {}
        self._version: tuple[object, ...] | None = None
        #: Called (in the loading thread) with every budget after a reload.
        self.on_change: Callable[[list[Budget]], None] | None = None
        #: Awaited (on the event loop) with every budget after a reload.
        self.after_change: Callable[[list[Budget]], Awaitable[None]] | None = None
        #: Other snapshots reloaded on the same notifications and polls (the prompt registry).
        self.followers: list[Callable[[], bool]] = []
        self._refreshing = asyncio.Lock()

    def _current_version(self) -> tuple[object, ...]:
        columns = [
            select(aggregate).select_from(table).scalar_subquery()
            for table in (VirtualKey, Team, User, Organization)
            for aggregate in (func.count(), func.max(table.updated_at))
        ]
        with self.db.session() as session:  # one round trip, twice a second
            return tuple(session.execute(select(*columns)).one())

    def load(self) -> bool:
        """Reload if anything changed; return whether it did."""
        version = self._current_version()
        if version == self._version:
            return False
        keys: dict[str, Principal] = {}
        key_names: dict[str, str] = {}
        with self.db.session() as session:
            organizations = {o.id: o for o in session.scalars(select(Organization))}
            teams = {t.id: t for t in session.scalars(select(Team))}
            users = {u.id: u for u in session.scalars(select(User))}
            for key in session.scalars(select(VirtualKey).where(VirtualKey.revoked_at.is_(None))):
                # Expired keys stay, so that their callers hear "expired" (expired_api_key)
                # rather than "incorrect"; authentication refuses them by expires_at.
                team = teams.get(key.team_id)
                user = users.get(key.user_id) if key.user_id else None
                org_id = team.organization_id if team else None
                organization = organizations.get(org_id) if org_id else None
                limits: list[Limit] = []
                budgets: list[Budget] = []
                for scope, owner, owner_id in (
                    ("key", key, key.id),
                    ("user", user, key.user_id),
                    ("team", team, key.team_id),
                    ("organization", organization, org_id),
                ):
                    level_limits, level_budgets = _controls(scope, owner, owner_id)
                    limits += level_limits
                    budgets += level_budgets
                if key.name:
                    key_names[key.id] = key.name
                keys[key.key_hash] = Principal(
                    key_id=key.id,
                    team_id=key.team_id,
                    user_id=key.user_id,
                    organization_id=org_id,
                    models=_narrow(
                        key.models,
                        user.models if user else None,
                        team.models if team else None,
                        organization.models if organization else None,
                    ),
                    limits=tuple(limits),
                    budgets=tuple(budgets),
                    hard_budgets=tuple(b for b in budgets if not b.soft),
                    expires_at=aware(key.expires_at).timestamp() if key.expires_at else None,
                )
        self.keys = keys
        self.team_names = {team_id: team.name for team_id, team in teams.items()}
        self.key_names = key_names
        self._version = version
        if self.on_change is not None:
            self.on_change([b for p in keys.values() for b in p.budgets])
        return True

    async def run(self, redis_url: str | None = None) -> None:
        """Reload on every change notification (Redis pub/sub), and poll in any case."""
        pubsub = await _subscribe(redis_url) if redis_url else None
        try:
            await self._watch(pubsub)
        finally:
            if pubsub is not None:
                await pubsub.aclose()

    async def _watch(self, pubsub: Any) -> None:
        while True:
            if pubsub is None:
                await asyncio.sleep(self.refresh_seconds)
            else:
                try:
                    await pubsub.get_message(
                        ignore_subscribe_messages=True, timeout=self.refresh_seconds
                    )
                except Exception:
                    log.exception("lost the change notifications; polling only")
                    pubsub = None
            await self.refresh()

    async def refresh(self) -> None:
        """Reload now if anything changed (the poll, a notification, or this instance's own
        admin API after a change, so that a key it created works on its very next request)."""
        async with self._refreshing:
            try:
                changed = await asyncio.to_thread(self.load)
                if changed and self.after_change is not None:
                    await self.after_change([b for p in self.keys.values() for b in p.budgets])
            except Exception:
                log.exception("could not refresh the key snapshot; serving the last one")
            for follower in self.followers:
                try:
                    await asyncio.to_thread(follower)
                except Exception:
                    log.exception("could not refresh a snapshot; serving the last one")


async def _subscribe(redis_url: str) -> Any:
    import redis.asyncio as aioredis

    from stackyard.auth.notify import CHANNEL

    try:
        pubsub = aioredis.Redis.from_url(redis_url).pubsub()
        await pubsub.subscribe(CHANNEL)
    except Exception:
        log.exception("cannot subscribe to change notifications; polling only")
        return None
    return pubsub
