"""LoRA fine-tuning of SmolLM2-135M-Instruct: Stackyard's trainer against TRL's
``SFTTrainer`` with PEFT, on the same Alpaca examples, with the same settings (rank 8 on the
attention projections, sequence length up to 512, batch 8, learning rate 2e-4 decaying
linearly, one epoch, fp32, seed 0), in the same run.

Reported: training tokens per second (the examples' tokens, padding not counted), the
process's peak memory, and the validation loss of each adapter on the same held-out
examples, computed by the same code (loss on the answers only).

Run: ``make bench-finetune`` (or ``python -m benchmarks.finetune --examples 128``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

DATA = (
    Path(__file__).resolve().parent.parent.parent
    / "shared"
    / "data"
    / "alpaca"
    / "alpaca_5000.json"
)
BATCH, MAX_LENGTH, LR, SEED = 8, 512, 2e-4, 0

OURS = r"""
import json, os, resource, sys, time
os.environ["HF_HUB_OFFLINE"] = "1"
from pathlib import Path
from stackyard.finetune.data import parse
from stackyard.finetune.settings import Settings
from stackyard.finetune.train import Trainer
from stackyard.finetune.tokens import ChatTokenizer

data_path, out, batch, max_length, lr, seed = sys.argv[1:7]
settings = Settings(n_epochs=1, batch_size=int(batch), max_length=int(max_length),
                    learning_rate=float(lr), seed=int(seed), checkpoint_every=10**9)
trainer = Trainer(settings, Path(out))
chat = trainer.load()
rows = [json.loads(line) for line in open(data_path)]
items = [chat.encode(parse(r, i + 1)) for i, r in enumerate(rows)]
started = time.perf_counter()
trainer.train(items)
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def examples(count: int, held_out: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    records = json.loads(DATA.read_text())
    rows = []
    for r in records:
        prompt = f"{r['instruction']}\n\n{r['input']}" if r["input"].strip() else r["instruction"]
        rows.append(
            {
                "prompt": [{"role": "user", "content": prompt}],
                "completion": [{"role": "assistant", "content": r["output"]}],
            }
        )
    return rows[:count], rows[count : count + held_out]


def ours_row(row: dict[str, Any]) -> dict[str, Any]:
    return {"messages": [*row["prompt"], *row["completion"]]}


def validation_loss(adapter: Path, held: list[dict[str, Any]]) -> tuple[float, int]:
    """The mean loss on the held-out answers with ``adapter`` on the base (our code for both)."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    from stackyard.finetune.data import parse
    from stackyard.finetune.settings import Settings
    from stackyard.finetune.train import Trainer

    trainer = Trainer(Settings(batch_size=BATCH, max_length=MAX_LENGTH), Path(tempfile.mkdtemp()))
    chat = trainer.load()
    weights = load_file(str(adapter / "adapter_model.safetensors"))
    weights = {k.replace(".default.", "."): v for k, v in weights.items()}
    result: Any = set_peft_model_state_dict(trainer.model, weights)
    unexpected = list(result.unexpected_keys)
    if unexpected:
        raise RuntimeError(f"{adapter}: unexpected keys, e.g. {unexpected[:2]}")
    items = [chat.encode(parse(ours_row(r), i + 1)) for i, r in enumerate(held)]
    tokens = sum(len(i) for i in items)
    return trainer.mean_loss(items), tokens


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=256, help="training examples")
    parser.add_argument("--held-out", type=int, default=64, help="validation examples")
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if not DATA.exists():
        print(f"the data set is not here: {DATA}", file=sys.stderr)
        return 2
    from benchmarks import _finetune_trl
    from stackyard.engine.sources import resolve
    from stackyard.finetune.data import parse
    from stackyard.finetune.tokens import ChatTokenizer
    from stackyard.finetune.train import load_tokenizer

    train, held = examples(args.examples, args.held_out)
    chat = ChatTokenizer(load_tokenizer("smollm2"), MAX_LENGTH)
    tokens = sum(len(chat.encode(parse(ours_row(r), 1))) for r in train)
    source = resolve("smollm2", "chat")
    results: dict[str, Any] = {"examples": len(train), "tokens": tokens}
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        (root / "ours.jsonl").write_text("".join(json.dumps(ours_row(r)) + "\n" for r in train))
        (root / "trl.jsonl").write_text("".join(json.dumps(r) + "\n" for r in train))
        common = [str(BATCH), str(MAX_LENGTH), str(LR), str(SEED)]
        print(f"Stackyard: {len(train)} examples, {tokens} tokens ...", flush=True)
        done = subprocess.run(
            [sys.executable, "-c", OURS, str(root / "ours.jsonl"), str(root / "ours"), *common],
            check=True,
            capture_output=True,
            text=True,
        )
        results["stackyard"] = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"  {results['stackyard']}", flush=True)
        print("TRL SFTTrainer ...", flush=True)
        results["trl"] = json.loads(
            _finetune_trl.run(
                str(source.directory),
                str(source.gguf_file),
                str(root / "trl.jsonl"),
                str(root / "trl"),
                *common,
            )
        )
        print(f"  {results['trl']}", flush=True)
        for name, adapter in (
            ("stackyard", root / "ours" / "adapter"),
            ("trl", root / "trl" / "adapter"),
        ):
            loss, _ = validation_loss(adapter, held)
            results[name]["validation_loss"] = loss
            results[name]["tokens_per_s"] = tokens / results[name]["seconds"]
    ratio = results["stackyard"]["tokens_per_s"] / results["trl"]["tokens_per_s"]
    results["ratio"] = ratio
    print()
    print(f"{len(train)} Alpaca examples ({tokens} tokens), batch {BATCH}, rank 8, fp32, CPU")
    print("| trainer | tokens/s | seconds | peak RSS (MiB) | validation loss |")
    print("| --- | --- | --- | --- | --- |")
    for name, label in (
        ("stackyard", "Stackyard"),
        ("trl", f"TRL {results['trl'].get('version')}"),
    ):
        r = results[name]
        print(
            f"| {label} | {r['tokens_per_s']:.0f} | {r['seconds']:.1f} | {r['peak_rss_mib']:.0f} "
            f"| {r['validation_loss']:.4f} |"
        )
    verdict = "PASS" if ratio >= 1.3 else "FAIL"
    print(f"\nthroughput ratio {ratio:.2f}x (target 1.3x): {verdict}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
