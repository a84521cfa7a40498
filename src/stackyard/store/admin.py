"""Administration of organisations, teams, users and keys, and spend reports (used by the CLI
and /admin)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from stackyard.auth.keys import generate_key
from stackyard.store.db import Database
from stackyard.store.tables import (
    GuardrailDecision,
    Organization,
    SpendDaily,
    SpendRecord,
    Team,
    User,
    VirtualKey,
)
from stackyard.store.tables.base import Governed, aware, new_id, utcnow

PERIODS = ("day", "month", "total")


class AdminError(ValueError):
    """A request the store refuses; the message is for the operator."""


def _check_period(period: str) -> str:
    if period not in PERIODS:
        raise AdminError(f"budget period must be one of {', '.join(PERIODS)}")
    return period


def _controls(
    models: list[str] | None,
    rpm: int | None,
    tpm: int | None,
    budget_usd: float | None,
    budget_period: str,
    budget_soft: bool,
) -> dict[str, Any]:
    """The columns any level (organisation, team, user, key) gets its controls in."""
    return {
        "models": models,
        "rpm": rpm,
        "tpm": tpm,
        "budget_usd": budget_usd,
        "budget_period": _check_period(budget_period),
        "budget_soft": budget_soft,
    }


def _limit_fields(owner: Governed) -> dict[str, Any]:
    return {
        "models": owner.models,
        "rpm": owner.rpm,
        "tpm": owner.tpm,
        "budget_usd": owner.budget_usd,
        "budget_period": owner.budget_period,
        "budget_soft": owner.budget_soft,
    }


def organization_row(organization: Organization) -> dict[str, Any]:
    return {
        "id": organization.id,
        "name": organization.name,
        **_limit_fields(organization),
        "created_at": organization.created_at.isoformat(),
    }


def create_organization(
    db: Database,
    name: str,
    *,
    models: list[str] | None = None,
    rpm: int | None = None,
    tpm: int | None = None,
    budget_usd: float | None = None,
    budget_period: str = "month",
    budget_soft: bool = False,
) -> dict[str, Any]:
    with db.session() as session:
        if session.scalar(select(Organization).where(Organization.name == name)) is not None:
            raise AdminError(f"an organisation named '{name}' exists already")
        organization = Organization(
            id=new_id("org"),
            name=name,
            **_controls(models, rpm, tpm, budget_usd, budget_period, budget_soft),
        )
        session.add(organization)
        session.flush()
        return organization_row(organization)


def list_organizations(db: Database) -> list[dict[str, Any]]:
    with db.session() as session:
        query = select(Organization).order_by(Organization.created_at)
        return [organization_row(o) for o in session.scalars(query)]


def _find_organization(session: Any, organization: str) -> Organization:
    found: Organization | None = session.scalar(
        select(Organization).where(
            (Organization.id == organization) | (Organization.name == organization)
        )
    )
    if found is None:
        raise AdminError(f"no organisation '{organization}'")
    return found


def team_row(team: Team) -> dict[str, Any]:
    return {
        "id": team.id,
        "name": team.name,
        "organization_id": team.organization_id,
        **_limit_fields(team),
        "created_at": team.created_at.isoformat(),
    }


def key_row(key: VirtualKey, team_name: str | None = None) -> dict[str, Any]:
    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "team_id": key.team_id,
        "team": team_name,
        "user_id": key.user_id,
        **_limit_fields(key),
        "expires_at": key.expires_at.isoformat() if key.expires_at else None,
        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
        "created_at": key.created_at.isoformat(),
    }


def create_team(
    db: Database,
    name: str,
    *,
    organization: str | None = None,
    models: list[str] | None = None,
    rpm: int | None = None,
    tpm: int | None = None,
    budget_usd: float | None = None,
    budget_period: str = "month",
    budget_soft: bool = False,
) -> dict[str, Any]:
    with db.session() as session:
        if session.scalar(select(Team).where(Team.name == name)) is not None:
            raise AdminError(f"a team named '{name}' exists already")
        team = Team(
            id=new_id("team"),
            name=name,
            organization_id=_find_organization(session, organization).id if organization else None,
            **_controls(models, rpm, tpm, budget_usd, budget_period, budget_soft),
        )
        session.add(team)
        session.flush()
        return team_row(team)


def list_teams(db: Database) -> list[dict[str, Any]]:
    with db.session() as session:
        return [team_row(t) for t in session.scalars(select(Team).order_by(Team.created_at))]


def _find_team(session: Any, team: str) -> Team:
    found: Team | None = session.scalar(select(Team).where((Team.id == team) | (Team.name == team)))
    if found is None:
        raise AdminError(f"no team '{team}'")
    return found


def user_row(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "team_id": user.team_id,
        **_limit_fields(user),
        "created_at": user.created_at.isoformat(),
    }


def create_user(
    db: Database,
    email: str,
    *,
    team: str | None = None,
    models: list[str] | None = None,
    rpm: int | None = None,
    tpm: int | None = None,
    budget_usd: float | None = None,
    budget_period: str = "month",
    budget_soft: bool = False,
) -> dict[str, Any]:
    with db.session() as session:
        if session.scalar(select(User).where(User.email == email)) is not None:
            raise AdminError(f"a user '{email}' exists already")
        user = User(
            id=new_id("user"),
            email=email,
            team_id=_find_team(session, team).id if team else None,
            **_controls(models, rpm, tpm, budget_usd, budget_period, budget_soft),
        )
        session.add(user)
        session.flush()
        return user_row(user)


def list_users(db: Database) -> list[dict[str, Any]]:
    with db.session() as session:
        return [user_row(u) for u in session.scalars(select(User).order_by(User.created_at))]


def _find_user(session: Any, user: str) -> User:
    found: User | None = session.scalar(
        select(User).where((User.id == user) | (User.email == user))
    )
    if found is None:
        raise AdminError(f"no user '{user}'")
    return found


@dataclass
class CreatedKey:
    key: str  # shown once, never stored
    record: dict[str, Any]


def create_key(
    db: Database,
    team: str,
    *,
    user: str | None = None,
    name: str = "",
    models: list[str] | None = None,
    rpm: int | None = None,
    tpm: int | None = None,
    budget_usd: float | None = None,
    budget_period: str = "month",
    budget_soft: bool = False,
    expires_in: dt.timedelta | None = None,
) -> CreatedKey:
    if expires_in is not None and expires_in <= dt.timedelta(0):
        raise AdminError("a key's expiry must be in the future (expires_in_days above 0)")
    plaintext, prefix, digest = generate_key()
    with db.session() as session:
        owner = _find_team(session, team)
        key = VirtualKey(
            id=new_id("key"),
            name=name,
            key_hash=digest,
            prefix=prefix,
            team_id=owner.id,
            user_id=_find_user(session, user).id if user else None,
            **_controls(models, rpm, tpm, budget_usd, budget_period, budget_soft),
            expires_at=utcnow() + expires_in if expires_in else None,
        )
        session.add(key)
        session.flush()
        return CreatedKey(plaintext, key_row(key, owner.name))


def list_keys(db: Database, *, include_revoked: bool = False) -> list[dict[str, Any]]:
    with db.session() as session:
        query = select(VirtualKey, Team.name).join(Team).order_by(VirtualKey.created_at)
        if not include_revoked:
            query = query.where(VirtualKey.revoked_at.is_(None))
        return [key_row(k, team_name) for k, team_name in session.execute(query)]


def revoke_key(db: Database, key_id: str) -> dict[str, Any]:
    with db.session() as session:
        key = session.get(VirtualKey, key_id)
        if key is None:
            raise AdminError(f"no key '{key_id}'")
        if key.revoked_at is None:
            key.revoked_at = utcnow()
        session.flush()
        return key_row(key)


CONTROLS = ("models", "rpm", "tpm", "budget_usd", "budget_period", "budget_soft")


def _change(owner: Governed, changes: dict[str, Any]) -> None:
    """Set the controls named in ``changes`` (None clears a limit); the others stay."""
    unknown = set(changes) - set(CONTROLS)
    if unknown:
        raise AdminError(f"cannot change {', '.join(sorted(unknown))}")
    if "budget_period" in changes:
        changes = {**changes, "budget_period": _check_period(changes["budget_period"] or "month")}
    if "budget_soft" in changes:
        changes = {**changes, "budget_soft": bool(changes["budget_soft"])}
    for name, value in changes.items():
        setattr(owner, name, value)


def update_team(db: Database, team: str, changes: dict[str, Any]) -> dict[str, Any]:
    """Change a team's models, limits or budget (by name or id)."""
    with db.session() as session:
        found = _find_team(session, team)
        _change(found, changes)
        session.flush()
        return team_row(found)


def update_key(db: Database, key_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    """Change a key's models, limits or budget (its secret stays the same)."""
    with db.session() as session:
        key = session.get(VirtualKey, key_id)
        if key is None:
            raise AdminError(f"no key '{key_id}'")
        _change(key, changes)
        session.flush()
        team = session.get(Team, key.team_id)
        return key_row(key, team.name if team else None)


GROUPS = {
    "organization": SpendRecord.organization_id,
    "team": SpendRecord.team_id,
    "user": SpendRecord.user_id,
    "key": SpendRecord.key_id,
    "model": SpendRecord.model,
}
DAILY_GROUPS = {
    "organization": SpendDaily.organization_id,
    "team": SpendDaily.team_id,
    "user": SpendDaily.user_id,
    "key": SpendDaily.key_id,
    "model": SpendDaily.model,
}


def _names(session: Any, by: str) -> dict[str, str]:
    """Display names for a report's groups (ids otherwise)."""
    if by == "organization":
        return {o.id: o.name for o in session.scalars(select(Organization))}
    if by == "team":
        return {t.id: t.name for t in session.scalars(select(Team))}
    if by == "user":
        return {u.id: u.email for u in session.scalars(select(User))}
    return {}


def _check_group(by: str) -> None:
    if by not in GROUPS:
        raise AdminError(f"--by must be one of {', '.join(GROUPS)}")


def spend(db: Database, *, by: str, since: dt.datetime) -> list[dict[str, Any]]:
    """Requests, tokens and cost per organisation, team, user, key or model since a moment
    (from the spend log: exact to the second), most expensive first."""
    _check_group(by)
    column = GROUPS[by]
    cost = func.sum(SpendRecord.cost_usd)
    query = (
        select(
            column,
            func.count(),
            func.sum(SpendRecord.prompt_tokens),
            func.sum(SpendRecord.completion_tokens),
            cost,
        )
        .where(SpendRecord.created_at >= since)
        .group_by(column)
        .order_by(cost.desc())
    )
    with db.session() as session:
        names = _names(session, by)
        return [
            {
                by: names.get(group, group) if group is not None else "(none)",
                "requests": count,
                "prompt_tokens": int(prompt or 0),
                "completion_tokens": int(completion or 0),
                "cost_usd": float(total or 0.0),
            }
            for group, count, prompt, completion, total in session.execute(query)
        ]


def daily_spend(db: Database, *, by: str, since: dt.date) -> list[dict[str, Any]]:
    """The same per UTC day from ``since`` on, from the daily rollup (no scan of the log),
    by day and then most expensive first; with errors, cache hits and mean latency."""
    _check_group(by)
    column = DAILY_GROUPS[by]
    cost = func.sum(SpendDaily.cost_usd)
    requests = func.sum(SpendDaily.requests)
    query = (
        select(
            SpendDaily.day,
            column,
            requests,
            func.sum(SpendDaily.errors),
            func.sum(SpendDaily.cache_hits),
            func.sum(SpendDaily.prompt_tokens),
            func.sum(SpendDaily.completion_tokens),
            cost,
            func.sum(SpendDaily.latency_ms),
        )
        .where(SpendDaily.day >= since)
        .group_by(SpendDaily.day, column)
        .order_by(SpendDaily.day, cost.desc())
    )
    with db.session() as session:
        names = _names(session, by)
        return [
            {
                "day": day.isoformat(),
                by: names.get(group, group) if group else "(none)",
                "requests": int(count),
                "errors": int(errors or 0),
                "cache_hits": int(hits or 0),
                "prompt_tokens": int(prompt or 0),
                "completion_tokens": int(completion or 0),
                "cost_usd": float(total or 0.0),
                "mean_latency_ms": round(float(latency or 0.0) / int(count), 2) if count else 0.0,
            }
            for day, group, count, errors, hits, prompt, completion, total, latency in (
                session.execute(query)
            )
        ]


def guardrail_decisions(
    db: Database, *, since: dt.datetime, team: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """The guardrails' audit log, newest first; ``team`` is a name or an id."""
    with db.session() as session:
        query = select(GuardrailDecision).where(GuardrailDecision.created_at >= since)
        if team is not None:
            query = query.where(GuardrailDecision.team_id == _find_team(session, team).id)
        query = query.order_by(GuardrailDecision.created_at.desc(), GuardrailDecision.id.desc())
        names = {t.id: t.name for t in session.scalars(select(Team))}
        return [
            {
                "created_at": aware(row.created_at).isoformat(),
                "request_id": row.request_id,
                "team": names.get(row.team_id, row.team_id) if row.team_id else None,
                "key_id": row.key_id,
                "model": row.model,
                "endpoint": row.endpoint,
                "rail": row.rail,
                "action": row.action,
                "detail": row.detail,
            }
            for row in session.scalars(query.limit(limit))
        ]
