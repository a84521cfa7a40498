"""``stackyard cache stats``: what the cache answered and saved, by model, team or key, from
the traces the server stores (so it works against any instance sharing that database)."""

from __future__ import annotations

from typing import Any

import click

from stackyard.observability import query
from stackyard.observability.cli import config_option
from stackyard.observability.query import TraceFilter

COLUMNS = [
    "requests",
    "cache_hits",
    "exact_hits",
    "semantic_hits",
    "hit_rate",
    "saved_tokens",
    "saved_usd",
]


@click.group("cache")
def cache_group() -> None:
    """What the LLM cache answered and saved."""


@cache_group.command("stats")
@click.option("--since", default="24h", show_default=True, help="7d, 24h, 30m or a date.")
@click.option(
    "--by",
    type=click.Choice(["model", "team", "key"]),
    default="model",
    show_default=True,
    help="One line per model, team or key.",
)
@config_option
def stats(since: str, by: str, config_path: str | None) -> None:
    """Hits by tier (exact, semantic), hit rate, and the tokens and dollars the hits saved:
    what the first answers cost upstream, less the cache's price per hit."""
    from stackyard.cli.common import since_value, store, table

    start = since_value(since, "--since")
    rows = query.aggregate(store(config_path), TraceFilter(since=start), group_by=by)
    if not rows:
        click.echo(f"no requests since {start:%Y-%m-%d %H:%M} UTC")
        return
    shown: list[dict[str, Any]] = []
    for row in sorted(rows, key=lambda r: -r["saved_usd"]):
        shown.append(
            {
                by: row["group"] or "-",
                **{c: row[c] for c in COLUMNS if c != "hit_rate"},
                "hit_rate": f"{row['cache_hits'] / row['requests']:.1%}",
                "saved_usd": f"{row['saved_usd']:.6f}",
            }
        )
    table(shown, [by, *COLUMNS])
    requests = sum(r["requests"] for r in rows)
    hits = sum(r["cache_hits"] for r in rows)
    saved = sum(r["saved_usd"] for r in rows)
    tokens = sum(r["saved_tokens"] for r in rows)
    click.echo(
        f"total: {hits} of {requests} requests from the cache ({hits / requests:.1%}), "
        f"{tokens} tokens and ${saved:.6f} saved"
    )
