"""``stackyard finetune``: check a dataset, and run a LoRA fine-tuning job from a YAML file
(like axolotl's), with a progress bar, resumable from its checkpoints."""

from __future__ import annotations

import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import click

from stackyard.finetune.settings import Settings


@click.group()
def finetune() -> None:
    """Fine-tune the in-process models with LoRA."""


@finetune.command("validate")
@click.argument("data", type=click.Path(exists=True, dir_okay=False))
@click.option("--base", default="smollm2", show_default=True, help="The model to tune.")
@click.option("--max-length", default=512, show_default=True, help="Tokens per example.")
@click.option("--epochs", default=3, show_default=True, help="For the estimate.")
def validate(data: str, base: str, max_length: int, epochs: int) -> None:
    """Check a JSONL dataset: every problem by line, duplicates, tokens, time."""
    from stackyard.finetune.dataset import prepare
    from stackyard.finetune.tokens import ChatTokenizer
    from stackyard.finetune.train import load_tokenizer

    tokenizer = ChatTokenizer(load_tokenizer(base), max_length)
    prepared = prepare(Path(data).read_text(encoding="utf-8").splitlines(), tokenizer)
    report = prepared.report(epochs=epochs)
    for error in report["errors"]:
        click.echo(f"line {error['line']}: {error['message']}", err=True)
    if report["duplicates"]:
        lines = ", ".join(map(str, report["duplicates"][:20]))
        click.echo(f"duplicates (skipped): lines {lines}", err=True)
    click.echo(
        f"{report['examples']} examples, {report['tokens']} tokens "
        f"({report['trained_tokens']} trained), longest {report['longest']}; "
        f"about {report['estimated_seconds']:.0f} s for {epochs} epochs on CPU"
    )
    if report["errors"]:
        sys.exit(2)


class _Progress:
    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.last = 0.0

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        if kind == "metrics":
            now = time.monotonic()
            final = event["step"] == event["total_steps"]
            if not final and now - self.last < (0.2 if self.tty else 10):
                return
            self.last = now
            done, total = event["step"], event["total_steps"]
            bar = "#" * int(30 * done / total) + "-" * (30 - int(30 * done / total))
            line = (
                f"epoch {event['epoch']} [{bar}] {done}/{total} loss {event['train_loss']:.4f} "
                f"{event['tokens_per_second']:.0f} tok/s, {event['eta_seconds']:.0f} s left"
            )
            click.echo(("\r" if self.tty else "") + line, nl=not self.tty or final, err=True)
        elif kind == "validated":
            click.echo(
                f"data: {event['train']} training and {event['validation']} validation "
                f"examples, {event['tokens']} tokens",
                err=True,
            )
        elif kind in ("loading", "evaluating", "resumed", "checkpoint"):
            detail = {k: v for k, v in event.items() if k != "type"}
            click.echo(f"{kind}: {json.dumps(detail)}", err=True)


@finetune.command("run")
@click.argument("config_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--id", "run_id", help="Resume this run (its checkpoints), or name a new one.")
@click.option(
    "--ray",
    "ray_address",
    metavar="ADDRESS",
    help="Train on this Ray cluster ('auto', 'ray://host:10001', or 'local').",
)
@click.option(
    "--ray-workers", default=1, show_default=True, help="Data-parallel workers on the cluster."
)
@click.option("--ray-use-gpu", is_flag=True, help="One GPU per Ray worker.")
def run_command(
    config_file: str,
    run_id: str | None,
    ray_address: str | None,
    ray_workers: int,
    ray_use_gpu: bool,
) -> None:
    """Fine-tune as CONFIG_FILE says (a LoRA adapter, or every weight with `tuning: full`),
    evaluate the result against the base model, and print how to serve it."""
    from stackyard.finetune.run import InvalidData, load_config, model_id, run

    try:
        config = load_config(Path(config_file))
    except ValueError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)
    run_id = run_id or time.strftime("%Y%m%d") + "-" + uuid.uuid4().hex[:6]
    out_dir = Path(config.output_dir) / run_id
    cluster = None
    if ray_address:
        from stackyard.finetune.distributed import RayTraining

        cluster = RayTraining(ray_address, workers=ray_workers, use_gpu=ray_use_gpu)
    try:
        result = run(config, out_dir, on_event=_Progress(), cluster=cluster)
    except InvalidData as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)
    evaluation = result["evaluation"]
    click.echo(f"\ntrained {result['steps']} steps in {result['seconds']:.1f} s")
    click.echo(f"{'':>16} {'base':>10} {'tuned':>10}")
    for metric in ("validation_loss", "exact_match", "f1"):
        base, tuned = evaluation["base"][metric], evaluation["tuned"][metric]
        click.echo(f"{metric:>16} {_num(base):>10} {_num(tuned):>10}")
    name = model_id(config.base, config.suffix, run_id)
    where = (
        f"    provider: local\n    model: {result['adapter']}"
        if config.tuning == "full"
        else f"    base: {config.base}\n    adapter: {result['adapter']}"
    )
    click.echo(f"\nServe it: add to the models of your stackyard.yaml\n  - name: {name}\n{where}")


def _num(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


__all__ = ["Settings", "finetune"]
