"""``stackyard rag``: create collections, sync them with their folders (once, or watching),
query them, against the store of the config given. Syncs run here, with the config's
embedding models loaded in this process; a running server sees the result at once.

The commands act as the master key. Names are per team: a NAME is the master key's own
collection unless ``--team`` names the team (by name or id) whose collection it is."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import orjson

from stackyard.auth.principal import MASTER
from stackyard.rag.collections import Collection, RagError, SourceSpec, settings_from
from stackyard.rag.namespaces import not_found
from stackyard.rag.retrieve import QuerySpec
from stackyard.rag.service import RAG
from stackyard.rag.sync import SyncReport

T = TypeVar("T")
config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="YAML config file (default: ./stackyard.yaml if present, else the embedded default).",
)

team_option = click.option(
    "--team",
    metavar="TEAM",
    help="The team whose collection it is, by name or id (default: the master key's own).",
)


def _team_id(rag: RAG, team: str | None) -> str | None:
    """The id of the team ``team`` names (by id or name), or None for the master key's own
    namespace. An id that only collections carry (a team since gone) is taken as it is."""
    if team is None:
        return None
    from stackyard.store import admin

    for row in admin.list_teams(rag.collections.db):
        if team in (row["id"], row["name"]):
            return str(row["id"])
    if any(owner == team for owner, _ in rag.collections.by_team_name):
        return team
    raise RagError(404, f"no team '{team}'", code="team_not_found")


def _collection(rag: RAG, name: str, team: str | None) -> Collection:
    """``name`` in ``team``'s namespace (the master key's own without ``--team``), from the
    database; a miss says which namespaces have the name."""
    team_id = _team_id(rag, team)
    try:
        return rag.collections.get(name, team_id)
    except RagError as exc:
        if exc.status != 404:
            raise
        rag.collections.load()
        raise not_found(rag.collections, MASTER, name, team_id) from None


def _team_flag(team: str | None) -> str:
    """``--team TEAM`` for a command line we suggest, or nothing."""
    return f" --team {team}" if team else ""


def _open(config_path: str | None) -> tuple[RAG, Callable[[], Awaitable[None]]]:
    from stackyard.cli.common import load_config as _load
    from stackyard.cli.common import rag_models
    from stackyard.store.db import Database, default_url

    config, file = _load(config_path)
    models, close_models = rag_models(config, file)
    db = Database(config.database_url or default_url(file))
    db.migrate()
    base_dir = file.resolve().parent if file else Path.cwd()
    rag = RAG(config.rag, db, models, base_dir=base_dir, ray_address=config.ray_address)
    rag.collections.load()

    async def close() -> None:
        rag.close()
        await close_models()
        db.dispose()

    return rag, close


def _run(config_path: str | None, action: Callable[[RAG], Awaitable[T]]) -> T:
    rag, close = _open(config_path)

    async def main() -> T:
        try:
            return await action(rag)
        finally:
            await close()

    try:
        return asyncio.run(main())
    except RagError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1 if exc.status == 404 else 2)


@click.group()
def rag() -> None:
    """Collections of documents for retrieval-augmented generation."""


@rag.command("create")
@click.argument("name")
@click.option("--source", "sources", multiple=True, help="A folder or file to ingest (repeatable).")
@click.option("--glob", default="**/*", show_default=True, help="Which files under a folder.")
@click.option("--model", help="The embedding model (default: the first that embeds).")
@click.option("--chunk-size", type=int, help="Tokens (words and marks) per chunk (200).")
@click.option("--chunk-overlap", type=int, help="Tokens shared by neighbouring chunks (40).")
@click.option("--store", help="A vector store named in the config's rag.stores (default).")
@click.option("--text-field", default="text", show_default=True, help="CSV/JSONL text field.")
@click.option("--id-field", help="CSV/JSONL: the field that identifies a row.")
@click.option("--description", default="", help="What the collection holds.")
@click.option("--rerank", help="Rerank every query's candidates with this model.")
@click.option("--sync-every", type=int, help="Seconds between the server's scheduled syncs.")
@team_option
@config_option
def create(
    name: str,
    sources: tuple[str, ...],
    glob: str,
    model: str | None,
    chunk_size: int | None,
    chunk_overlap: int | None,
    store: str | None,
    text_field: str,
    id_field: str | None,
    description: str,
    rerank: str | None,
    sync_every: int | None,
    team: str | None,
    config_path: str | None,
) -> None:
    """Create a collection NAME over folders or files (then run `stackyard rag sync NAME`),
    the master key's own or, with --team, a team's."""
    body: dict[str, Any] = {
        "sources": [
            SourceSpec(
                path=str(Path(s).resolve()), glob=glob, text_field=text_field, id_field=id_field
            ).model_dump()
            for s in sources
        ],
        "description": description,
    }
    for key, value in (
        ("embedding_model", model),
        ("chunk_size", chunk_size),
        ("chunk_overlap", chunk_overlap),
        ("store", store),
        ("rerank", {"model": rerank} if rerank else None),
        ("sync_every", sync_every),
    ):
        if value is not None:
            body[key] = value

    async def action(rag: RAG) -> None:
        created = rag.create(name, body, _team_id(rag, team))
        settings = created.settings
        click.echo(
            f"Created {name}: {settings.embedding_model}, {settings.chunk_size}-token chunks, "
            f"store {settings.store}, {len(settings.sources)} source(s). "
            f"Next: stackyard rag sync {name}{_team_flag(team)}"
        )

    _run(config_path, action)


@rag.command("set")
@click.argument("name")
@click.option("--model", help="A new embedding model: the next sync builds and swaps an index.")
@click.option("--chunk-size", type=int)
@click.option("--chunk-overlap", type=int)
@click.option("--description")
@click.option("--rerank", help="Rerank every query with this model ('none': stop).")
@click.option("--sync-every", type=int, help="Seconds between scheduled syncs (0: none).")
@team_option
@config_option
def set_(
    name: str,
    model: str | None,
    chunk_size: int | None,
    chunk_overlap: int | None,
    description: str | None,
    rerank: str | None,
    sync_every: int | None,
    team: str | None,
    config_path: str | None,
) -> None:
    """Change a collection's settings."""
    changes: dict[str, Any] = {
        k: v
        for k, v in (
            ("embedding_model", model),
            ("chunk_size", chunk_size),
            ("chunk_overlap", chunk_overlap),
            ("description", description),
        )
        if v is not None
    }
    if rerank is not None:
        changes["rerank"] = None if rerank == "none" else {"model": rerank}
    if sync_every is not None:
        changes["sync_every"] = sync_every or None

    async def action(rag: RAG) -> None:
        collection = _collection(rag, name, team)
        settings = settings_from(changes, collection.settings)
        rag.check_settings(settings)
        rag.collections.update(collection, settings=settings)
        click.echo(
            f"Updated {name}. Run `stackyard rag sync {name}{_team_flag(team)}` to apply it."
        )

    _run(config_path, action)


@rag.command("list")
@team_option
@config_option
def list_(team: str | None, config_path: str | None) -> None:
    """Every collection (or one team's), with its team, model, size and last sync."""
    from stackyard.cli.common import table as _table
    from stackyard.store import admin

    async def action(rag: RAG) -> None:
        only = _team_id(rag, team)
        names = {t["id"]: t["name"] for t in admin.list_teams(rag.collections.db)}
        rows = []
        found = rag.collections.by_team_name.values()
        for c in sorted(found, key=lambda c: (c.team_id or "", c.name)):
            if team is not None and c.team_id != only:
                continue
            counts = rag.counts(c)
            last = c.last_sync or {}
            rows.append(
                {
                    "name": c.name,
                    "team": names.get(c.team_id, c.team_id) if c.team_id else "-",
                    "model": c.settings.embedding_model,
                    "store": c.settings.store,
                    "documents": counts["documents"],
                    "chunks": counts["chunks"],
                    "last sync": f"{last.get('seconds', '-')} s" if last else "never",
                }
            )
        if rows:
            _table(rows, list(rows[0]))
        else:
            click.echo("No collections yet: stackyard rag create NAME --source FOLDER")

    _run(config_path, action)


@rag.command("show")
@click.argument("name")
@team_option
@config_option
def show(name: str, team: str | None, config_path: str | None) -> None:
    """A collection's settings, size and last sync report."""
    import json

    async def action(rag: RAG) -> None:
        collection = _collection(rag, name, team)
        click.echo(json.dumps({**collection.public(), **rag.counts(collection)}, indent=2))

    _run(config_path, action)


@rag.command("delete")
@click.argument("name")
@click.confirmation_option(prompt="Delete the collection and its indexes?")
@team_option
@config_option
def delete(name: str, team: str | None, config_path: str | None) -> None:
    """Delete a collection and its indexes (the sources are not touched)."""

    async def action(rag: RAG) -> None:
        await rag.drop(_collection(rag, name, team))
        click.echo(f"Deleted {name}.")

    _run(config_path, action)


class _Bar:
    """A progress line on the terminal (stderr): the stage, a bar, counts and the rate."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.started = time.monotonic()
        self._last = 0.0

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self._last < 0.1 and done != total):
            return
        self._last = now
        rate = done / max(now - self.started, 1e-6)
        if total:
            filled = int(30 * done / total)
            bar = "#" * filled + "-" * (30 - filled)
            line = f"{stage:<9} [{bar}] {done}/{total} docs ({rate:.0f}/s)"
        else:
            line = f"{stage:<9} {done} docs ({rate:.0f}/s)"
        click.echo("\r" + line, nl=False, err=True)

    def end(self) -> None:
        if self.enabled:
            click.echo("", err=True)


def _summary(name: str, report: SyncReport) -> str:
    text = (
        f"{name}: {report.added} added, {report.changed} changed, {report.deleted} deleted, "
        f"{report.unchanged} unchanged; {report.chunks_embedded} chunks embedded, "
        f"{report.chunks_reused} reused, in {report.seconds:.2f} s"
    )
    if report.swapped:
        text += " (new embedding model: index swapped)"
    for failure in report.failed:
        text += f"\n  skipped {failure['source']}: {failure['error']}"
    return text


@rag.command("sync")
@click.argument("name")
@click.option("--watch", is_flag=True, help="Keep syncing whenever the sources change.")
@click.option(
    "--interval", default=2.0, show_default=True, help="Seconds between checks with --watch."
)
@click.option(
    "--ray",
    "ray_address",
    metavar="ADDRESS",
    help="Read, chunk and embed on this Ray cluster (auto, ray://HOST:10001 or local), "
    "however few files changed.",
)
@team_option
@config_option
def sync_(
    name: str,
    watch: bool,
    interval: float,
    ray_address: str | None,
    team: str | None,
    config_path: str | None,
) -> None:
    """Bring a collection up to date with its sources: only new or changed chunks are
    embedded; vanished documents are removed."""

    async def action(rag: RAG) -> None:
        collection = _collection(rag, name, team)
        if ray_address is not None:
            from stackyard.rag.distributed import RayCluster

            actors = rag.config.ray_embed_actors
            rag.cluster = RayCluster(ray_address, min_files=0, actors=actors)
        while True:
            bar = _Bar(sys.stderr.isatty())
            report = await rag.sync(collection, progress=bar)
            bar.end()
            if not watch or report.added or report.changed or report.deleted or report.failed:
                click.echo(_summary(name, report))
            if not watch:
                return
            await asyncio.sleep(interval)

    with contextlib.suppress(KeyboardInterrupt):
        _run(config_path, action)


@rag.command("query")
@click.argument("name")
@click.argument("text")
@click.option("--top-k", default=5, show_default=True)
@click.option("--mode", type=click.Choice(["hybrid", "dense", "keyword"]), default="hybrid")
@click.option("--filter", "filters", multiple=True, help="FIELD=VALUE on metadata (repeatable).")
@click.option("--rerank", metavar="MODEL", help="Rerank the candidates with this model.")
@click.option("--candidates", default=20, show_default=True, help="Passages --rerank scores.")
@team_option
@config_option
def query(
    name: str,
    text: str,
    top_k: int,
    mode: str,
    filters: tuple[str, ...],
    rerank: str | None,
    candidates: int,
    team: str | None,
    config_path: str | None,
) -> None:
    """Search a collection; print the passages with their scores."""
    where: dict[str, Any] = {}
    for item in filters:
        field, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"'{item}' is not FIELD=VALUE", param_hint="--filter")
        where[field] = value
    spec = QuerySpec.model_validate(
        {
            "query": text,
            "top_k": top_k,
            "mode": mode,
            "filter": where or None,
            "rerank": {"model": rerank, "candidates": candidates} if rerank else None,
        }
    )

    async def action(rag: RAG) -> None:
        collection = _collection(rag, name, team)
        results = await rag.query(collection, spec)
        if not results:
            click.echo("No passages (has the collection been synced?).")
        for i, result in enumerate(results, start=1):
            hit = result.hit
            score = f"score {result.score:.4f}"
            if result.rerank_score is not None:
                score += f", reranked {result.rerank_score:.4f}"
            click.secho(f"[{i}] {hit.source_id}  {score}", bold=True)
            click.echo("    " + " ".join(hit.text.split())[:300])

    _run(config_path, action)


@rag.command("eval")
@click.argument("name")
@click.option(
    "--queries",
    "queries_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="JSONL: _id (or id) and text (or query) per line.",
)
@click.option(
    "--qrels",
    "qrels_path",
    type=click.Path(exists=True, dir_okay=False),
    help="Relevance judgements: BEIR's TSV, or JSONL with query_id, doc_id, score.",
)
@click.option(
    "--answers",
    "answers_path",
    type=click.Path(exists=True, dir_okay=False),
    help="JSONL: _id (or id) and answers (or answer): scores the RAG answers.",
)
@click.option("-k", "k", default=10, show_default=True, help="Cut-off for nDCG, recall and MRR.")
@click.option("--mode", type=click.Choice(["hybrid", "dense", "keyword"]), default="hybrid")
@click.option("--rerank", metavar="MODEL", help="Rerank the candidates with this model.")
@click.option("--model", metavar="MODEL", help="The chat model that answers (with --answers).")
@click.option("--passages", default=5, show_default=True, help="Passages each answer gets.")
@click.option("--judge", metavar="MODEL", help="Also judge each answer's faithfulness.")
@click.option("--limit", type=int, help="Only the first N queries.")
@click.option(
    "--json", "json_path", type=click.Path(dir_okay=False), help="Write every query's scores here."
)
@team_option
@config_option
def eval_(
    name: str,
    queries_path: str,
    qrels_path: str | None,
    answers_path: str | None,
    k: int,
    mode: str,
    rerank: str | None,
    model: str | None,
    passages: int,
    judge: str | None,
    limit: int | None,
    json_path: str | None,
    team: str | None,
    config_path: str | None,
) -> None:
    """Score a collection's retrieval (nDCG@k, recall@k, MRR@k against qrels) and, with gold
    answers, its RAG answers (exact match, F1, and faithfulness with --judge)."""
    from stackyard.rag import evaluate as ev

    if qrels_path is None and answers_path is None:
        raise click.UsageError("give --qrels, --answers or both")
    if answers_path is not None and model is None:
        raise click.UsageError("--answers needs --model, the chat model that answers")
    try:
        queries = ev.load_queries(Path(queries_path))
        qrels = ev.load_qrels(Path(qrels_path)) if qrels_path else {}
        answers = ev.load_answers(Path(answers_path)) if answers_path else None
    except (ev.EvalFileError, OSError) as exc:
        raise click.UsageError(str(exc)) from None
    wanted = set(qrels) | set(answers or {})
    queries = {q: t for q, t in queries.items() if q in wanted}
    if limit is not None:
        queries = dict(list(queries.items())[:limit])
    if not queries:
        raise click.UsageError("no query has relevance judgements or gold answers")
    spec: dict[str, Any] = {"mode": mode}
    if rerank:
        spec["rerank"] = {"model": rerank}

    async def action(rag: RAG) -> ev.Evaluation:
        collection = _collection(rag, name, team)
        bar = _Bar(sys.stderr.isatty())
        report = await ev.evaluate(
            rag,
            collection,
            queries,
            qrels,
            k=k,
            spec=spec,
            answers=answers,
            model=model,
            passages=passages,
            judge=judge,
            progress=lambda done, total: bar("querying", done, total),
        )
        bar.end()
        return report

    report = _run(config_path, action)
    click.echo(
        f"{name}: {report.queries} queries ({report.judged} judged, {report.answered} answered)"
    )
    for metric, value in report.metrics.items():
        if value is not None:
            click.echo(f"  {metric:<12} {value:.4f}")
    if report.faithfulness:
        counts = ", ".join(f"{n} {v}" for v, n in report.faithfulness.items())
        click.echo(f"  faithful: {counts}")
    if json_path:
        Path(json_path).write_bytes(orjson.dumps(report.public(), option=orjson.OPT_INDENT_2))
