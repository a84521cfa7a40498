"""``stackyard orgs|teams|users|keys``, ``spend`` and ``guardrails audit``: the platform
team's administration, straight on the store."""

from __future__ import annotations

import datetime as dt

import click
import orjson

from stackyard.cli.common import (
    admin_call,
    changed,
    config_option,
    limit_options,
    limits,
    model_list,
    since_value,
    store,
    table,
)
from stackyard.store import admin


@click.group()
def orgs() -> None:
    """Create and list organisations (a team may belong to one; its limits apply too)."""


@orgs.command("create")
@click.argument("name")
@click.option("--models", help="Comma-separated models its teams may use (default: all).")
@limit_options
@config_option
def orgs_create(
    name: str,
    models: str | None,
    rpm: int | None,
    tpm: int | None,
    budget: float | None,
    period: str,
    soft: bool,
    config_path: str | None,
) -> None:
    """Create an organisation."""
    db = store(config_path)
    organization = admin_call(
        lambda: admin.create_organization(
            db, name, models=model_list(models), **limits(rpm, tpm, budget, period, soft)
        )
    )
    changed(config_path)
    click.echo(f"created organisation {organization['name']} ({organization['id']})")


@orgs.command("list")
@config_option
def orgs_list(config_path: str | None) -> None:
    """List organisations with their limits."""
    rows = admin.list_organizations(store(config_path))
    table(rows, ["id", "name", *CONTROLS])


CONTROLS = ["models", "rpm", "tpm", "budget_usd", "budget_period", "budget_soft"]


@click.group()
def teams() -> None:
    """Create and list teams."""


@teams.command("create")
@click.argument("name")
@click.option("--org", help="The organisation (name or id) the team belongs to.")
@click.option("--models", help="Comma-separated models the team may use (default: all).")
@limit_options
@config_option
def teams_create(
    name: str,
    org: str | None,
    models: str | None,
    rpm: int | None,
    tpm: int | None,
    budget: float | None,
    period: str,
    soft: bool,
    config_path: str | None,
) -> None:
    """Create a team."""
    db = store(config_path)
    team = admin_call(
        lambda: admin.create_team(
            db,
            name,
            organization=org,
            models=model_list(models),
            **limits(rpm, tpm, budget, period, soft),
        )
    )
    changed(config_path)
    click.echo(f"created team {team['name']} ({team['id']})")


@teams.command("list")
@config_option
def teams_list(config_path: str | None) -> None:
    """List teams with their limits."""
    rows = admin.list_teams(store(config_path))
    table(rows, ["id", "name", "organization_id", *CONTROLS])


@click.group()
def users() -> None:
    """Create and list users (a key may belong to one; their limits apply too)."""


@users.command("create")
@click.argument("email")
@click.option("--team", help="The team (name or id) the user belongs to.")
@click.option("--models", help="Comma-separated models the user may use (default: all).")
@limit_options
@config_option
def users_create(
    email: str,
    team: str | None,
    models: str | None,
    rpm: int | None,
    tpm: int | None,
    budget: float | None,
    period: str,
    soft: bool,
    config_path: str | None,
) -> None:
    """Create a user."""
    db = store(config_path)
    user = admin_call(
        lambda: admin.create_user(
            db,
            email,
            team=team,
            models=model_list(models),
            **limits(rpm, tpm, budget, period, soft),
        )
    )
    changed(config_path)
    click.echo(f"created user {user['email']} ({user['id']})")


@users.command("list")
@config_option
def users_list(config_path: str | None) -> None:
    """List users with their limits."""
    rows = admin.list_users(store(config_path))
    table(rows, ["id", "email", "team_id", *CONTROLS])


@click.group()
def keys() -> None:
    """Create, list and revoke virtual keys."""


@keys.command("create")
@click.option("--team", required=True, help="The team (name or id) that owns the key.")
@click.option("--user", help="The user (email or id) the key belongs to, if any.")
@click.option("--name", default="", help="A label for the key.")
@click.option("--models", help="Comma-separated models the key may use (default: the team's).")
@limit_options
@click.option("--expires-in-days", type=click.FloatRange(min=0), help="Expiry, in days.")
@config_option
def keys_create(
    team: str,
    user: str | None,
    name: str,
    models: str | None,
    rpm: int | None,
    tpm: int | None,
    budget: float | None,
    period: str,
    soft: bool,
    expires_in_days: float | None,
    config_path: str | None,
) -> None:
    """Create a key; it is shown once, only its hash is stored."""
    db = store(config_path)
    created = admin_call(
        lambda: admin.create_key(
            db,
            team,
            user=user,
            name=name,
            models=model_list(models),
            **limits(rpm, tpm, budget, period, soft),
            expires_in=dt.timedelta(days=expires_in_days) if expires_in_days else None,
        )
    )
    changed(config_path)
    click.echo(created.key)
    click.echo(
        f"key {created.record['id']} for team {created.record['team']}: store it now, "
        "it is not shown again",
        err=True,
    )


@keys.command("list")
@click.option("--all", "include_revoked", is_flag=True, help="Include revoked keys.")
@config_option
def keys_list(include_revoked: bool, config_path: str | None) -> None:
    """List keys (prefixes only)."""
    rows = admin.list_keys(store(config_path), include_revoked=include_revoked)
    columns = ["id", "prefix", "team", "name", "models", "rpm", "tpm", "budget_usd", "expires_at"]
    table(rows, [*columns, "revoked_at"] if include_revoked else columns)


@keys.command("revoke")
@click.argument("key_id")
@config_option
def keys_revoke(key_id: str, config_path: str | None) -> None:
    """Revoke a key (every running instance stops accepting it within a second)."""
    db = store(config_path)
    admin_call(lambda: admin.revoke_key(db, key_id))
    changed(config_path)
    click.echo(f"revoked {key_id}")


@click.command()
@click.option("--by", type=click.Choice(list(admin.GROUPS)), default="team", show_default=True)
@click.option("--since", default="7d", show_default=True, help="7d, 24h, 30m or a date.")
@click.option(
    "--daily",
    is_flag=True,
    help="One line per UTC day and group, from the daily rollup (whole days from --since's).",
)
@config_option
def spend(by: str, since: str, daily: bool, config_path: str | None) -> None:
    """Spend per organisation, team, user, key or model, most expensive first."""
    start = since_value(since, "--since")
    if daily:
        rows = admin.daily_spend(store(config_path), by=by, since=start.date())
        if not rows:
            click.echo(f"no requests since {start:%Y-%m-%d} UTC")
            return
        most = max(r["cost_usd"] for r in rows) or 1.0
        for row in rows:  # a bar per line: the days worth a look stand out
            row["cost"] = "#" * round(20 * row["cost_usd"] / most)
        table(
            rows,
            ["day", by, "requests", "errors", "cache_hits", "mean_latency_ms", "cost_usd", "cost"],
        )
    else:
        rows = admin.spend(store(config_path), by=by, since=start)
        if not rows:
            click.echo(f"no requests since {start:%Y-%m-%d %H:%M} UTC")
            return
        table(rows, [by, "requests", "prompt_tokens", "completion_tokens", "cost_usd"])
    total = sum(r["cost_usd"] for r in rows)
    click.echo(f"total: ${total:.6f} over {sum(r['requests'] for r in rows)} requests")


@click.group()
def guardrails() -> None:
    """What the guardrails decided."""


@guardrails.command("audit")
@click.option("--team", help="Only this team's requests (name or id).")
@click.option("--since", default="1d", show_default=True, help="7d, 24h, 30m or a date.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@config_option
def guardrails_audit(team: str | None, since: str, limit: int, config_path: str | None) -> None:
    """The guardrails' decisions, newest first: what each rail found and did (never the
    values it found)."""
    start = since_value(since, "--since")
    db = store(config_path)
    rows = admin_call(lambda: admin.guardrail_decisions(db, since=start, team=team, limit=limit))
    if not rows:
        click.echo(f"no guardrail decisions since {start:%Y-%m-%d %H:%M} UTC")
        return
    for row in rows:
        row["detail"] = orjson.dumps(row["detail"]).decode()
    table(rows, ["created_at", "team", "model", "rail", "action", "detail", "request_id"])
