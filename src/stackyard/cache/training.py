"""Train the semantic tier's pair classifier (:mod:`stackyard.cache.pairs`): ``make
cache-verifier``, or ``python -m stackyard.cache.training --data ../shared/data``.

Data (from the project's ``../shared/data/``; a user's clone has none, and the trained weights
ship with the package): GPTCache's copy of Quora Question Pairs, split by position, every fifth
pair held out for the benchmark (``benchmarks/cache.py``), the pair after each of those kept
apart to calibrate the thresholds (as many pairs as the benchmark's, so that an error budget's
threshold rests on hundreds of hits), the rest for training; the MRPC training file; and, with
``--augment``, the pairs the QQP training labels imply (not in the shipped weights: measured in
``BENCHMARKS.md``); with ``--contrast N``, N contrast negatives and N paraphrase positives
generated from the training questions (:mod:`stackyard.cache.contrast_pairs`; none from a
question of the held-out or calibration splits); with ``--resume``, training goes on from
existing weights instead of the base model. Two epochs, about 36 minutes on two CPU cores
and 5 more to calibrate; the layers' changes and the head are written to
``verifier.safetensors`` beside :mod:`stackyard.cache.pairs`, with the calibration table and
the combination of the score with the similarity (``--calibrate-only`` redoes those two for
existing weights).
"""

from __future__ import annotations

import gzip
import json
import math
import random
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from stackyard import deltas
from stackyard.cache import pairs as pairmodel
from stackyard.trainers import trainer_parser

Pair = tuple[str, str, bool]


def qqp_records(data: Path) -> list[dict[str, Any]]:
    path = data / "qqp" / "similiar_qqp_full.json.gz"
    with tarfile.open(fileobj=gzip.open(path)) as archive:  # a tar inside gzip, despite the name
        handle = archive.extractfile(archive.getmembers()[0])
        assert handle is not None
        records: list[dict[str, Any]] = json.load(handle)
    return records


def qqp_split(data: Path, part: str) -> list[Pair]:
    """``test`` (every fifth pair), ``calibration`` (the pair after each), ``train`` (the other
    three in five)."""
    chosen = []
    for i, r in enumerate(qqp_records(data)):
        where = "test" if i % 5 == 0 else "calibration" if i % 5 == 1 else "train"
        if where == part:
            chosen.append((r["text_a"], r["text_b"], r["label"] == 1))
    return chosen


def transitive_pairs(
    train: list[Pair],
    held_out: list[Pair],
    rng: random.Random,
    per_question: int = 2,
    largest: int = 8,
) -> list[Pair]:
    """Pairs the training labels imply but do not state: questions joined by paraphrase links
    ask the same thing (A = B and B = C: A = C), and a question that differs from one of a
    group differs from all of it. At most ``per_question`` new pairs per question and per
    labelled difference (large groups would otherwise crowd out the rest), none from a group of
    more than ``largest`` questions (QQP's largest drift: "Why were the 500 and 1000 rupee notes
    withdrawn?" joins "What was your reaction to it?"), none that a held-out split holds, none
    that the labels contradict."""
    parent: dict[str, str] = {}

    def root(q: str) -> str:
        parent.setdefault(q, q)
        while parent[q] != q:
            parent[q] = parent[parent[q]]
            q = parent[q]
        return q

    for a, b, same in train:
        if same:
            parent[root(a)] = root(b)
    groups: dict[str, list[str]] = {}
    for q in list(parent):
        groups.setdefault(root(q), []).append(q)

    def group(q: str) -> tuple[str, list[str]]:
        return (root(q), groups[root(q)]) if q in parent else (q, [q])

    stated = {frozenset((a, b)) for a, b, _ in train + held_out}
    different = {frozenset((group(a)[0], group(b)[0])) for a, b, same in train if not same}
    found: list[Pair] = []
    seen: set[frozenset[str]] = set()

    def add(a: str, b: str, same: bool) -> None:
        key = frozenset((a, b))
        if a != b and key not in stated and key not in seen:
            seen.add(key)
            found.append((a, b, same))

    for members in groups.values():
        if not 3 <= len(members) <= largest or frozenset((group(members[0])[0],)) in different:
            continue  # nothing implied, too loose, or a group the labels say differs from itself
        for q in members:
            for other in rng.sample(members, min(len(members), per_question + 1)):
                add(q, other, True)
    for a, b, same in train:
        if same:
            continue
        (root_a, like_a), (root_b, like_b) = group(a), group(b)
        if root_a == root_b or max(len(like_a), len(like_b)) > largest:
            continue  # the labels disagree, or a loose group
        options = [(x, y) for x in like_a for y in like_b if {x, y} != {a, b}]
        for x, y in rng.sample(options, min(len(options), per_question)):
            add(x, y, False)
    return found


def mrpc_split(data: Path, part: str) -> list[Pair]:
    name = "msr_paraphrase_test.txt" if part == "test" else "msr_paraphrase_train_backup.txt"
    lines = (data / "mrpc" / name).read_text(encoding="utf-8-sig").splitlines()[1:]
    found = []
    for line in lines:
        quality, _, _, a, b = line.split("\t")
        found.append((a, b, quality == "1"))
    return found


def batches(
    examples: list[Pair], size: int, tokenizer: Any, rng: random.Random
) -> Iterator[tuple[dict[str, Any], Any]]:
    """Batches of similar length (less padding), in random order, each pair in a random order."""
    import torch

    order = examples[:]
    rng.shuffle(order)
    groups: list[list[Pair]] = []
    for start in range(0, len(order), size * 50):
        window = sorted(order[start : start + size * 50], key=lambda p: len(p[0]) + len(p[1]))
        groups.extend(window[i : i + size] for i in range(0, len(window), size))
    rng.shuffle(groups)
    for group in groups:
        swapped = [(b, a, s) if rng.random() < 0.5 else (a, b, s) for a, b, s in group]
        batch = tokenizer(
            [a for a, _, _ in swapped],
            [b for _, b, _ in swapped],
            truncation=True,
            max_length=pairmodel.MAX_LENGTH,
            padding=True,
            return_tensors="pt",
        )
        yield dict(batch), torch.tensor([float(s) for _, _, s in swapped])


def train(
    data: Path,
    out: Path,
    *,
    epochs: float = 2.0,
    batch_size: int = 32,
    lr: float = 5e-4,
    limit: int | None = None,
    seed: int = 0,
    full: bool = False,
    head_lr: float = 1e-3,
    augment: bool = False,
    contrast: int = 0,
    resume: Path | None = None,
) -> dict[str, Any]:
    import torch
    from safetensors.torch import save_file
    from transformers import AutoModel, AutoTokenizer

    from stackyard.engine.sources import resolve

    torch.manual_seed(seed)
    rng = random.Random(seed)
    directory = resolve("all-minilm-l6-v2", "embeddings").directory
    tokenizer = AutoTokenizer.from_pretrained(str(directory))
    encoder = AutoModel.from_pretrained(str(directory))
    base = {k: v.detach().clone() for k, v in encoder.named_parameters()}
    model = pairmodel.build_full(encoder) if full else pairmodel.build(encoder)
    if resume is not None:
        start_from(model, resume)
    examples = qqp_split(data, "train") + mrpc_split(data, "train")
    if augment:
        held_out = qqp_split(data, "calibration") + qqp_split(data, "test")
        implied = transitive_pairs(qqp_split(data, "train"), held_out, random.Random(seed))
        print(f"{len(implied)} implied pairs added", file=sys.stderr)
        examples += implied
    rng.shuffle(examples)
    if limit:
        examples = examples[:limit]
    if contrast:
        from stackyard.cache.contrast_pairs import generate

        unseen = {
            q
            for a, b, _ in qqp_split(data, "calibration") + qqp_split(data, "test")
            for q in (a, b)
        }
        training = [q for a, b, _ in examples for q in (a, b) if q not in unseen]
        generated = generate(training, contrast, random.Random(seed))
        print(f"{len(generated)} generated contrast and paraphrase pairs added", file=sys.stderr)
        examples += generated
        rng.shuffle(examples)
    steps = int(math.ceil(len(examples) / batch_size) * epochs)
    trainable = [p for p in model.parameters() if p.requires_grad]
    head = list(model["head"].parameters())
    body = [p for p in model["encoder"].parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        [{"params": body, "lr": lr}, {"params": head, "lr": head_lr}], weight_decay=0.01
    )
    warmup = max(1, steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / (steps - warmup)))
    )
    loss_fn = torch.nn.BCEWithLogitsLoss()
    started = time.monotonic()
    step = 0
    running = 0.0
    model.train()
    while step < steps:
        for batch, labels in batches(examples, batch_size, tokenizer, rng):
            loss = loss_fn(pairmodel.logits(model, batch), labels)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            running = 0.98 * running + 0.02 * loss.item() if step > 1 else loss.item()
            if step % 50 == 0 or step == steps:
                rate = step / (time.monotonic() - started)
                left = (steps - step) / rate
                print(
                    f"step {step}/{steps}  loss {running:.4f}  {rate:.2f} steps/s  "
                    f"{left / 60:.1f} min left",
                    file=sys.stderr,
                    flush=True,
                )
            if step >= steps:
                break
    if full:
        state = pairmodel.full_state(model, base)
        meta = {"mode": "full"}
    else:
        state = {k: v.to(torch.float16) for k, v in pairmodel.adapter_state(model).items()}
        meta = {"mode": "lora", "rank": str(pairmodel.RANK), "alpha": str(pairmodel.ALPHA)}
    meta = {
        **meta,
        "base": "all-minilm-l6-v2",
        "trained_on": f"{len(examples)} pairs (QQP train split, MRPC train"
        + (", the pairs QQP's labels imply" if augment else "")
        + (f", {2 * contrast} generated contrast and paraphrase pairs" if contrast else "")
        + (f"; resumed from {resume.name}" if resume is not None else "")
        + f"), {steps} steps, seed {seed}",
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(out), metadata=meta)
    report = {"steps": steps, "seconds": round(time.monotonic() - started)}
    report.update(recalibrate(data, out))
    print(json.dumps(report), file=sys.stderr)
    return report


def start_from(model: Any, weights: Path) -> None:
    """Load trained weights (a full model's differences, or adapters) into ``model`` as built
    for training, so that training goes on from them."""
    import torch
    from safetensors import safe_open

    with safe_open(str(weights), framework="pt") as handle:
        meta = handle.metadata() or {}
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118
    with torch.no_grad():
        if meta.get("mode") == "full":
            deltas.apply(model["encoder"].named_parameters(), tensors)
        else:
            for name, module in model["encoder"].named_modules():
                if hasattr(module, "lora_a"):
                    module.lora_a.copy_(tensors[f"lora.{name}.a"].float())
                    module.lora_b.copy_(tensors[f"lora.{name}.b"].float())
        model["head"].weight.copy_(tensors["head.weight"].float())
        model["head"].bias.copy_(tensors["head.bias"].float())


def recalibrate(data: Path, weights: Path) -> dict[str, Any]:
    """Score the calibration pairs as the semantic tier decides (similarity floor, numbers and
    negation, then the classifier, as loaded at run time), fit the combination of its score
    with the similarity on them, and write both into the file."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    from stackyard.cache.semantic import Semantic, admits
    from stackyard.engine.sources import resolve

    directory = resolve("all-minilm-l6-v2", "embeddings").directory
    model = pairmodel.PairModel(directory, weights)
    tier = Semantic()  # its embedder, as the tier runs it
    floor = tier.min_similarity
    calibration = qqp_split(data, "calibration")
    first = tier.embed_sync([a for a, _, _ in calibration])
    second = tier.embed_sync([b for _, b, _ in calibration])
    near = [float(x @ y) for x, y in zip(first, second, strict=True)]
    kept = [i for i, (a, b, _) in enumerate(calibration) if admits(a, b, near[i], floor)]
    scored = model.scores([calibration[i][:2] for i in kept], batch_size=64)
    labels = [same for _, _, same in calibration]
    similarity = [near[i] for i in kept]
    combination = pairmodel.fit_combination(scored, similarity, [labels[i] for i in kept])
    scores = [0.0] * len(calibration)
    decided = [0.0] * len(calibration)
    for i, value in zip(kept, scored, strict=True):
        scores[i] = value
        decided[i] = pairmodel.combine(combination, value, near[i])
    accuracy = sum((p >= 0.5) == y for p, y in zip(scores, labels, strict=True)) / len(labels)
    with safe_open(str(weights), framework="pt") as handle:
        meta = dict(handle.metadata() or {})
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118
    meta["calibration"] = json.dumps(pairmodel.calibrate(decided, labels))
    meta.pop("combine", None)
    if combination is not None:
        meta["combine"] = json.dumps([round(w, 6) for w in combination])
    meta["calibration_pairs"] = str(len(calibration))
    meta["calibration_accuracy"] = f"{accuracy:.4f}"
    meta["min_similarity"] = str(floor)
    save_file(tensors, str(weights), metadata=meta)
    return {"calibration_accuracy": accuracy}


def main(argv: list[str] | None = None) -> None:
    parser = trainer_parser(__doc__, pairmodel.WEIGHTS)
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=4e-5, help="the encoder's learning rate")
    parser.add_argument("--limit", type=int, help="train on at most this many pairs")
    parser.add_argument(
        "--lora", action="store_true", help="train low-rank adapters instead of every layer"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--augment", action="store_true", help="add the pairs the training labels imply"
    )
    parser.add_argument(
        "--contrast",
        type=int,
        default=0,
        help="add this many generated contrast negatives and as many paraphrase positives",
    )
    parser.add_argument(
        "--resume", type=Path, help="go on training from these weights (a verifier file)"
    )
    parser.add_argument(
        "--calibrate-only", action="store_true", help="recalibrate the weights in --out"
    )
    args = parser.parse_args(argv)
    if not (args.data / "qqp").exists():
        parser.error(f"{args.data}/qqp is missing: the training pairs come from ../shared/data")
    if args.calibrate_only:
        print(json.dumps(recalibrate(args.data, args.out)))
        return
    train(
        args.data,
        args.out,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        limit=args.limit,
        full=not args.lora,
        seed=args.seed,
        augment=args.augment,
        contrast=args.contrast,
        resume=args.resume,
    )


if __name__ == "__main__":
    main()
