"""``stackyard eval run CONFIG``: run an evaluation through the gateway, write its reports,
and exit non-zero when it should stop a build."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import click

from stackyard.evals import dataset, gate, report
from stackyard.evals.config import EvalConfig, load_config
from stackyard.evals.runner import GatewayClient, Run, Target, run_experiment
from stackyard.evals.scorers.registry import build

PASSED, FAILED, UNUSABLE = 0, 1, 2


@click.group("eval")
def eval_group() -> None:
    """Evaluate prompts and models over datasets; gate CI on the result."""


async def _run_all(
    config: EvalConfig, items: list[dataset.Item], base_url: str, api_key: str | None
) -> tuple[Run, Run | None]:
    scorers = [build(spec) for spec in config.scorers]
    candidate = config.candidate()
    baseline_target: Target | None = None
    saved: Run | None = None
    if config.baseline is not None:
        if config.baseline.run is not None:
            saved = Run.from_json(json.loads(config.baseline.run.read_text()))
        else:
            baseline_target = config.baseline.target()
            if baseline_target.prompt is None and baseline_target.model is None:
                raise ValueError("baseline: name a 'prompt', a 'model' or a saved 'run'")
            if baseline_target.model is None:
                baseline_target.model = candidate.model
    total = len(items) * (2 if baseline_target else 1)
    async with GatewayClient(base_url, api_key) as gateway:
        with click.progressbar(length=total, label="evaluating", file=sys.stderr) as bar:
            run = await run_experiment(
                config.name,
                items,
                candidate,
                scorers,
                gateway,
                concurrency=config.concurrency,
                progress=bar.update,
            )
            if baseline_target is not None:
                saved = await run_experiment(
                    f"{config.name} (baseline)",
                    items,
                    baseline_target,
                    scorers,
                    gateway,
                    concurrency=config.concurrency,
                    progress=bar.update,
                )
    return run, saved


@eval_group.command("run")
@click.argument("config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--gateway", help="The gateway's URL (overrides the file; default :8000).")
@click.option("--api-key", envvar="STACKYARD_API_KEY", help="A key (or STACKYARD_API_KEY).")
@click.option("--max-drop", type=click.FloatRange(0, 1), help="Overrides the file's max_drop.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Report folder.")
@click.option(
    "--promote",
    metavar="LABEL",
    help="When it passes, point LABEL of the candidate prompt at the version evaluated.",
)
@click.option(
    "--record/--no-record",
    default=True,
    show_default=True,
    help="Keep the run on the gateway (the console's Evaluations page).",
)
def run_command(
    config_file: Path,
    gateway: str | None,
    api_key: str | None,
    max_drop: float | None,
    out: Path | None,
    promote: str | None,
    record: bool,
) -> None:
    """Run CONFIG_FILE's evaluation. Exit 0 when every scorer meets its threshold and none
    dropped significantly against the baseline, 1 when one did not, 2 when the evaluation
    could not run. With --promote, a passing prompt version is released under that label."""
    try:
        config = load_config(config_file)
        items = dataset.load(config.dataset)
        config.candidate()
    except ValueError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(UNUSABLE)
    base_url = (
        gateway or config.gateway or os.environ.get("STACKYARD_BASE_URL") or "http://127.0.0.1:8000"
    )
    try:
        run, baseline = asyncio.run(_run_all(config, items, base_url, api_key))
    except (ValueError, OSError) as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(UNUSABLE)
    failed_items = sum(r.error is not None for r in run.results)
    if failed_items == len(run.results):
        click.echo(f"Error: every request failed; first: {run.results[0].error}", err=True)
        sys.exit(UNUSABLE)
    thresholds = {build(spec).name: build(spec).threshold for spec in config.scorers}
    checks = gate.evaluate(
        run,
        thresholds,
        baseline,
        max_drop=config.max_drop if max_drop is None else max_drop,
        alpha=config.alpha,
    )
    folder = out or (config_file.parent / config.out)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (folder / f"{stamp}-run.json").write_text(json.dumps(run.to_json(), indent=1))
    (folder / "latest-run.json").write_text(json.dumps(run.to_json(), indent=1))
    (folder / "report.md").write_text(report.markdown(run, checks, baseline))
    (folder / "report.html").write_text(report.html_report(run, checks, baseline))
    _print_checks(run, checks)
    passed = all(c.passed for c in checks)
    click.echo(f"{'PASSED' if passed else 'FAILED'}; reports in {folder}")
    if record:
        gate_options = {
            "thresholds": thresholds,
            "max_drop": config.max_drop if max_drop is None else max_drop,
            "alpha": config.alpha,
        }
        _record(run, baseline, gate_options, base_url, api_key)
    if passed and promote:
        _promote(run, promote, base_url, api_key)
    elif promote:
        click.echo(f"not promoted: '{promote}' stays where it was")
    sys.exit(PASSED if passed else FAILED)


def _record(
    run: Run, baseline: Run | None, gate_options: dict[str, Any], base_url: str, key: str | None
) -> None:
    """Keep the runs on the gateway (the baseline first, then the candidate against it). A
    gateway that cannot keep them costs a warning, never the build."""
    from stackyard.client.base import Client, ClientError

    client = Client(base_url, key)
    try:
        body: dict[str, Any] = {"run": run.to_json(), **gate_options}
        if baseline is not None:
            kept = client.request("POST", "/api/experiments", {"run": baseline.to_json()})
            body["baseline_id"] = kept["id"]
        recorded = client.request("POST", "/api/experiments", body)
    except ClientError as exc:
        click.echo(f"warning: the run was not recorded on the gateway: {exc}", err=True)
        return
    root = base_url.rstrip("/").removesuffix("/v1")
    click.echo(f"recorded as {recorded['id']}: {root}/ui/evals/{recorded['id']}")


def _promote(run: Run, label: str, base_url: str, api_key: str | None) -> None:
    """Point ``label`` at the one prompt version every item was served (``name@version``)."""
    from stackyard.client.base import Client, ClientError

    served = {r.prompt_version for r in run.results if r.prompt_version}
    if len(served) != 1:
        click.echo(
            "Error: nothing to promote: the candidate is not one registry prompt version "
            f"(served: {', '.join(sorted(served)) or 'none'})",
            err=True,
        )
        sys.exit(UNUSABLE)
    name, _, version = served.pop().rpartition("@")
    try:
        Client(base_url, api_key).request(
            "POST", f"/api/prompts/{name}/labels", {"label": label, "version": int(version)}
        )
    except ClientError as exc:
        click.echo(f"Error: could not promote {name}@{version} to {label}: {exc}", err=True)
        sys.exit(UNUSABLE)
    click.echo(f"promoted {name}@{version} to {label}")


@eval_group.command("compare")
@click.argument("baseline_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("candidate_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--max-drop", type=click.FloatRange(0, 1), default=0.02, show_default=True)
@click.option("--alpha", type=click.FloatRange(0, 1), default=0.05, show_default=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Report folder.")
def compare_command(
    baseline_file: Path,
    candidate_file: Path,
    max_drop: float,
    alpha: float,
    out: Path | None,
) -> None:
    """Compare two saved runs side by side: every scorer's mean, its change and whether the
    change is significant, and the items that moved. Exit 1 when the candidate dropped
    significantly."""
    try:
        baseline = Run.from_json(json.loads(baseline_file.read_text()))
        candidate = Run.from_json(json.loads(candidate_file.read_text()))
    except (ValueError, KeyError, TypeError) as exc:
        click.echo(f"Error: not a saved run: {exc}", err=True)
        sys.exit(UNUSABLE)
    scorers = sorted({name for r in candidate.results for name in r.scores})
    checks = gate.evaluate(
        candidate, dict.fromkeys(scorers), baseline, max_drop=max_drop, alpha=alpha
    )
    _print_checks(candidate, checks)
    for scorer in scorers:
        ours, theirs = candidate.scores(scorer), baseline.scores(scorer)
        moved = [
            (i, theirs[i], ours[i]) for i in sorted(ours) if i in theirs and ours[i] != theirs[i]
        ]
        if moved:
            click.echo(f"\n{scorer}: {len(moved)} items changed")
            for item, before, after in sorted(moved, key=lambda m: m[2] - m[1])[:10]:
                click.secho(
                    f"  {item}: {before:.3f} -> {after:.3f}",
                    fg="red" if after < before else "green",
                )
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "compare.md").write_text(report.markdown(candidate, checks, baseline))
        (out / "compare.html").write_text(report.html_report(candidate, checks, baseline))
    passed = all(c.passed for c in checks)
    click.echo(f"\n{'no significant drop' if passed else 'FAILED: a significant drop'}")
    sys.exit(PASSED if passed else FAILED)


def _print_checks(run: Run, checks: list[gate.Check]) -> None:
    rows = report.summary_rows(run, checks)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(report.HEADERS)]
    click.echo("  ".join(h.ljust(w) for h, w in zip(report.HEADERS, widths, strict=True)))
    for row in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))


@eval_group.group("dataset")
def dataset_group() -> None:
    """Build datasets."""


@dataset_group.command("from-traces")
@click.argument("output", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--prompt", "prompt_name", help="Requests that used this prompt (its variables).")
@click.option("--version", "prompt_version", type=int, help="Only this version of the prompt.")
@click.option("--model", help="Requests to this model (their last user message).")
@click.option("--since", default="7d", show_default=True, help="7d, 24h, 30m or a date.")
@click.option("--limit", default=200, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="Config file.")
def from_traces(
    output: Path,
    prompt_name: str | None,
    prompt_version: int | None,
    model: str | None,
    since: str,
    limit: int,
    config_path: str | None,
) -> None:
    """Write a JSONL dataset from stored traces (with bodies): each answered request becomes
    an item, its prompt variables (or last user message) the input and its answer the
    expected output, to review and correct before use."""
    from stackyard.cli.common import since_value
    from stackyard.cli.common import store as _store
    from stackyard.evals.traces import items_from_traces

    if prompt_name is None and model is None:
        raise click.UsageError("name a --prompt or a --model")
    items = items_from_traces(
        _store(config_path),
        prompt_name=prompt_name,
        prompt_version=prompt_version,
        model=model,
        since=since_value(since, "--since"),
        limit=limit,
    )
    if not items:
        click.echo("no stored traces with bodies match", err=True)
        sys.exit(1)
    output.write_text("".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items))
    click.echo(f"{len(items)} items -> {output}")
