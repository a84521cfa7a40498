"""``stackyard traces``: list, show and follow the gateway's traces from the terminal (reading
the store the server writes, so it works against any instance sharing that database)."""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import replace
from typing import Any

import click

from stackyard.observability import query
from stackyard.observability.query import TraceFilter

TAIL_OVERLAP = dt.timedelta(seconds=5)
LIST_COLUMNS = [
    "time",
    "request_id",
    "model",
    "deployment",
    "status",
    "ms",
    "ttft_ms",
    "tokens",
    "cost_usd",
]


def _row(trace: dict[str, Any]) -> dict[str, Any]:
    started = dt.datetime.fromisoformat(trace["started_at"])
    return {
        "time": started.astimezone(dt.UTC).strftime("%m-%d %H:%M:%S"),
        "request_id": trace["request_id"],
        "model": trace["model"],
        "deployment": trace["deployment"],
        "status": trace["status"],
        "ms": f"{trace['duration_ms']:.0f}",
        "ttft_ms": None if trace["ttft_ms"] is None else f"{trace['ttft_ms']:.0f}",
        "tokens": f"{trace['input_tokens']}/{trace['output_tokens']}",
        "cost_usd": trace["cost_usd"],
    }


def filter_options(command: Any) -> Any:
    for option in reversed(
        [
            click.option("--model", help="Only this model."),
            click.option("--team", help="Only this team (id)."),
            click.option("--key", help="Only this key (id)."),
            click.option("--status", help="ok, error, or an HTTP status."),
            click.option("--tag", help="Only traces with this tag."),
            click.option("--session", help="Only this session."),
            click.option("--search", "-q", help="Text in the client's metadata."),
        ]
    ):
        command = option(command)
    return command


def _filter(since: dt.datetime | None = None, **options: Any) -> TraceFilter:
    return TraceFilter(
        since=since,
        model=options.get("model"),
        team_id=options.get("team"),
        key_id=options.get("key"),
        status=options.get("status"),
        tag=options.get("tag"),
        session_id=options.get("session"),
        search=options.get("search"),
    )


config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="YAML config file (default: ./stackyard.yaml if present, else the embedded default).",
)


@click.group()
def traces() -> None:
    """List, show and follow request traces."""


@traces.command("list")
@click.option("--since", default="24h", show_default=True, help="7d, 24h, 30m or a date.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
@click.option("--json", "as_json", is_flag=True, help="JSON lines instead of a table.")
@filter_options
@config_option
def list_command(
    since: str, limit: int, as_json: bool, config_path: str | None, **options: Any
) -> None:
    """The latest traces, newest first."""
    from stackyard.cli.common import since_value
    from stackyard.cli.common import store as _store
    from stackyard.cli.common import table as _table

    found = query.list_traces(
        _store(config_path), _filter(since_value(since, "--since"), **options), limit=limit
    )
    if as_json:
        for trace in found["data"]:
            click.echo(json.dumps(trace))
        return
    if not found["data"]:
        click.echo(f"no traces since {since}")
        return
    _table([_row(t) for t in found["data"]], LIST_COLUMNS)


@traces.command("show")
@click.argument("identifier")
@click.option("--json", "as_json", is_flag=True, help="The whole trace as JSON.")
@click.option("--bodies/--no-bodies", default=True, help="Print request and response bodies.")
@config_option
def show(identifier: str, as_json: bool, bodies: bool, config_path: str | None) -> None:
    """One trace (by request id, trace id or span id): its requests, a waterfall of its
    spans, its bodies and scores."""
    from stackyard.cli.common import store as _store

    db = _store(config_path)
    trace = query.get_trace(db, identifier)
    if trace is None:
        click.echo(f"Error: no trace '{identifier}'", err=True)
        raise SystemExit(1)
    if as_json:
        click.echo(json.dumps(trace, indent=2))
        return
    click.echo(f"trace {trace['trace_id']}")
    for record in trace["requests"]:
        click.echo(
            f"  request {record['request_id']}: {record['endpoint']} {record['model']} -> "
            f"{record['deployment'] or '-'}  status {record['status']}  "
            f"{record['duration_ms']:.1f} ms  tokens {record['input_tokens']}/"
            f"{record['output_tokens']}  ${record['cost_usd']:.6f}"
        )
        if record.get("session_id"):
            click.echo(f"    session {record['session_id']}")
        if record.get("tags"):
            click.echo(f"    tags {', '.join(record['tags'])}")
        if record.get("metadata"):
            click.echo(f"    metadata {json.dumps(record['metadata'])}")
    click.echo("")
    for line in waterfall(trace["spans"]["data"]):
        click.echo(line)
    if trace["spans"]["has_more"]:
        click.echo(f"  ... more spans (GET /api/traces/{identifier}/spans?offset=...)")
    if bodies:
        for record in trace["requests"]:
            for name in ("request_body", "response_body"):
                if record.get(name) is not None:
                    click.echo(f"\n{name.replace('_', ' ')}:")
                    click.echo(json.dumps(record[name], indent=2, ensure_ascii=False)[:4000])
    for score in trace["scores"]:
        comment = f" ({score['comment']})" if score.get("comment") else ""
        click.echo(f"score {score['name']} = {score['value']}{comment} [{score['source']}]")


def waterfall(spans: list[dict[str, Any]], width: int = 40) -> list[str]:
    """Spans as an indented tree with a bar for when each ran."""
    if not spans:
        return []
    start = min(s["start_ns"] for s in spans)
    end = max(s["end_ns"] for s in spans)
    scale = width / max(1, end - start)
    children: dict[str | None, list[dict[str, Any]]] = {}
    ids = {s["span_id"] for s in spans}
    for span in spans:
        parent = span["parent_id"] if span["parent_id"] in ids else None
        children.setdefault(parent, []).append(span)
    lines: list[str] = []

    def walk(parent: str | None, depth: int) -> None:
        for span in sorted(children.get(parent, ()), key=lambda s: s["start_ns"]):
            offset = int((span["start_ns"] - start) * scale)
            length = max(1, int((span["end_ns"] - span["start_ns"]) * scale))
            bar = " " * offset + "█" * min(length, width - offset)
            mark = " !" if span["status"] == "error" else ""
            label = ("  " * depth + span["name"])[:36]
            lines.append(f"{label:<36} {bar:<{width}} {span['duration_ms']:9.1f} ms{mark}")
            walk(span["span_id"], depth + 1)

    walk(None, 0)
    return lines


@traces.command("tail")
@click.option("--interval", default=0.5, show_default=True, help="Seconds between polls.")
@click.option("--max", "most", type=click.IntRange(min=1), help="Stop after this many traces.")
@filter_options
@config_option
def tail(interval: float, most: int | None, config_path: str | None, **options: Any) -> None:
    """Follow live traffic: print each new trace as it is stored (Ctrl-C to stop)."""
    from stackyard.cli.common import store as _store

    db = _store(config_path)
    base = _filter(**options)
    after = dt.datetime.now(dt.UTC)
    #: Traces already printed, by id, with their start (a trace is stored up to a second
    #: after it starts, so each poll looks a little back and skips what it has shown).
    seen: dict[str, dt.datetime] = {}
    shown = 0
    click.echo("  ".join(LIST_COLUMNS), err=True)
    try:
        while most is None or shown < most:
            window = replace(base, after=after - TAIL_OVERLAP)
            found = query.list_traces(db, window, limit=1000, ascending=True)["data"]
            for trace in found:
                if trace["id"] in seen:
                    continue
                started = dt.datetime.fromisoformat(trace["started_at"])
                seen[trace["id"]] = started
                row = _row(trace)
                click.echo("  ".join("-" if row[c] is None else str(row[c]) for c in LIST_COLUMNS))
                shown += 1
                if most is not None and shown >= most:
                    return
                after = max(after, started)
            seen = {k: v for k, v in seen.items() if v >= after - TAIL_OVERLAP}
            time.sleep(interval)
    except KeyboardInterrupt:
        pass
