"""Fine-tune the injection classifier with its own upper layers (issue 32): ``python -m
stackyard.guardrails.training --deep``.

The same data as the logistic regression (:mod:`stackyard.guardrails.training`): the
llm-warden training split, the hand-written hard negatives and the written attacks and
look-alikes. all-MiniLM-L6-v2's first layers (up to the entity tagger's) stay frozen and
shared; the layers after them and the head (the same features: the windows' mean and maximum,
and the length) are trained together, class-balanced, on six sevenths of the prompts. The
threshold is the score that keeps false positives at ``fpr`` among the benign prompts of the
last seventh (every seventh benign and every seventh attack), which training never sees: the
shipped weights are the ones the threshold was measured on."""

from __future__ import annotations

import json
import math
import random
import sys
import time
from pathlib import Path
from typing import Any

from stackyard.guardrails import injection_layers
from stackyard.guardrails.injection import features
from stackyard.guardrails.reading import (
    PIECE_LAYER,
    quantizes,
    read,
    sentence_vectors,
    shallow,
    windows,
)
from stackyard.guardrails.training import threshold_at


def frozen_states(embedder: Any, texts: list[str]) -> list[Any]:
    """Each text's windows after the frozen layers (half precision: they are only read)."""
    import torch

    full = embedder[0].auto_model
    out = []
    with torch.inference_mode():
        for number, text in enumerate(texts):
            *_, batch = windows(embedder, text)
            out.append(shallow(full, PIECE_LAYER)(input_ids=batch).last_hidden_state.half())
            if number % 500 == 0:
                print(f"read {number}/{len(texts)}", file=sys.stderr, flush=True)
    return out


def logit(layers: Any, head: Any, states: Any, length: int) -> Any:
    import torch

    vectors = sentence_vectors(states.float(), layers)
    row = torch.cat(
        [vectors.mean(0), vectors.max(0).values, torch.tensor([math.log1p(length) / 10])]
    )
    return head(row).squeeze(-1)


def fit(
    embedder: Any,
    states: list[Any],
    texts: list[str],
    labels: list[bool],
    *,
    epochs: float,
    batch_size: int,
    lr: float,
    seed: int,
) -> tuple[Any, Any]:
    """Train fresh copies of the upper layers and a head on the given texts."""
    import torch

    torch.manual_seed(seed)
    rng = random.Random(seed)
    layers = injection_layers.base_layers(embedder).train()
    size = embedder[0].auto_model.config.hidden_size
    head = torch.nn.Linear(2 * size + 1, 1)
    optimizer = torch.optim.AdamW(
        [{"params": layers.parameters(), "lr": lr}, {"params": head.parameters(), "lr": 1e-3}],
        weight_decay=0.01,
    )
    positives = sum(labels) / len(labels)
    weight = {True: 0.5 / positives, False: 0.5 / (1 - positives)}
    order = list(range(len(texts)))
    steps = int(math.ceil(len(order) / batch_size) * epochs)
    warmup = max(1, steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / (steps - warmup)))
    )
    started = time.monotonic()
    step = 0
    while step < steps:
        rng.shuffle(order)
        for at in range(0, len(order), batch_size):
            chosen = order[at : at + batch_size]
            loss: Any = torch.zeros(())
            for i in chosen:
                target = torch.tensor(float(labels[i]))
                term = torch.nn.functional.binary_cross_entropy_with_logits(
                    logit(layers, head, states[i], len(texts[i])), target
                )
                loss = loss + term * weight[labels[i]] / len(chosen)
            loss.backward()
            torch.nn.utils.clip_grad_norm_([*layers.parameters(), *head.parameters()], 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            if step % 25 == 0 or step == steps:
                rate = step / (time.monotonic() - started)
                print(
                    f"step {step}/{steps}  loss {loss.item():.4f}  "
                    f"{(steps - step) / rate / 60:.1f} min left",
                    file=sys.stderr,
                    flush=True,
                )
            if step >= steps:
                break
    return layers.eval(), head.eval()


def scores(layers: Any, head: Any, states: list[Any], texts: list[str]) -> list[float]:
    import torch

    with torch.inference_mode():
        return [
            float(torch.sigmoid(logit(layers, head, s, len(t))))
            for s, t in zip(states, texts, strict=True)
        ]


def runtime_scores(embedder: Any, layers: Any, head: Any, texts: list[str]) -> list[float]:
    """The classifier's probabilities as the rail computes them (its read, quantized where
    the rail's is)."""
    import numpy as np

    weights = head.weight.detach()[0].numpy().astype(np.float64)
    bias = float(head.bias.detach()[0])
    found = []
    for text in texts:
        vectors = read(embedder, text, whole=True, upper=layers).vectors
        found.append(1 / (1 + math.exp(-(float(features(vectors, len(text)) @ weights) + bias))))
    return found


def validation(labels: list[bool]) -> list[int]:
    """The validation part, by index: every seventh benign prompt and every seventh attack."""
    seen = {True: 0, False: 0}
    held = []
    for i, label in enumerate(labels):
        seen[label] += 1
        if seen[label] % 7 == 0:
            held.append(i)
    return held


def read_threshold(
    found: list[float], held: list[int], labels: list[bool], fpr: float
) -> tuple[float, float, float]:
    """The threshold that flags ``fpr`` of the validation part's benign prompts (``found``:
    the scores of ``held``, in order), and the shares of its attacks and of its benign
    prompts flagged at it."""
    benign = [p for p, i in zip(found, held, strict=True) if not labels[i]]
    attacks = [p for p, i in zip(found, held, strict=True) if labels[i]]
    threshold = threshold_at(benign, fpr)
    caught = sum(p >= threshold for p in attacks) / len(attacks)
    return threshold, caught, sum(p >= threshold for p in benign) / len(benign)


def rethreshold(
    texts: list[str], labels: list[bool], out: Path, *, fpr: float = 0.005
) -> dict[str, Any]:
    """The 8-bit threshold of the classifier at ``out`` read again on its validation part,
    by the recipe :func:`train` uses, without training: for a change to the 8-bit read
    (``out`` is rewritten with the new ``threshold_int8``)."""
    from stackyard.engine.loading import load_embedder
    from stackyard.engine.sources import resolve
    from stackyard.guardrails.injection import InjectionDetector

    data = json.loads(out.read_text())
    trained = data.get("meta", {}).get("prompts")
    if trained != len(texts):  # another validation part than the one training read
        raise SystemExit(
            f"{out} was trained on {trained} prompts, these are {len(texts)}: give the "
            "switches it was trained with (make guardrails-injection passes --tensor-trust)"
        )
    embedder = load_embedder(resolve("all-minilm-l6-v2", "embeddings"), "cpu")
    detector = InjectionDetector(embedder, out)
    if not detector.classifier or not quantizes(embedder, detector.upper):
        raise SystemExit(f"{out}: no fine-tuned classifier read in 8 bits here to re-read")
    held = validation(labels)
    found = detector.probabilities([texts[i] for i in held])
    threshold, caught, _ = read_threshold(found, held, labels, fpr)
    report = {
        "threshold_int8_before": data.get("threshold_int8"),
        "threshold_int8": round(threshold, 6),
        "validation_true_positive_rate_int8": round(caught, 4),
    }
    data["threshold_int8"] = report["threshold_int8"]
    data["meta"]["threshold_int8"] = report["threshold_int8"]
    data["meta"]["validation_true_positive_rate_int8"] = report[
        "validation_true_positive_rate_int8"
    ]
    out.write_text(json.dumps(data) + "\n")
    print(json.dumps(report), file=sys.stderr)
    return report


def train(
    texts: list[str],
    labels: list[bool],
    out: Path,
    *,
    trained_on: str,
    fpr: float = 0.005,
    epochs: float = 4.0,
    batch_size: int = 16,
    lr: float = 3e-5,
    seed: int = 0,
) -> dict[str, Any]:
    from stackyard.engine.loading import load_embedder
    from stackyard.engine.sources import resolve

    started = time.monotonic()
    embedder = load_embedder(resolve("all-minilm-l6-v2", "embeddings"), "cpu")
    states = frozen_states(embedder, texts)
    held = validation(labels)
    held_set = set(held)
    kept = [i for i in range(len(texts)) if i not in held_set]
    settings = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed}
    layers, head = fit(
        embedder,
        [states[i] for i in kept],
        [texts[i] for i in kept],
        [labels[i] for i in kept],
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
    )
    found = scores(layers, head, [states[i] for i in held], [texts[i] for i in held])
    threshold, caught, flagged = read_threshold(found, held, labels, fpr)
    report = {
        "prompts": len(texts),
        "validation_prompts": len(held),
        "validation_true_positive_rate": round(caught, 4),
        "validation_false_positive_rate": round(flagged, 4),
        "threshold": round(threshold, 6),
    }
    extra = {}
    layers_file = out.with_name(injection_layers.LAYERS.name)
    injection_layers.save(layers, embedder, layers_file, {"layers_from": str(PIECE_LAYER)})
    # what the rail runs: the layers as loaded back from their file (8-bit deltas)
    running = injection_layers.load(embedder, layers_file)
    if quantizes(embedder, running):  # the rail will run these layers in 8 bits: measure that
        quantized = runtime_scores(embedder, running, head, [texts[i] for i in held])
        threshold_int8, caught_int8, _ = read_threshold(quantized, held, labels, fpr)
        extra["threshold_int8"] = round(threshold_int8, 6)
        report["validation_true_positive_rate_int8"] = round(caught_int8, 4)
        report["threshold_int8"] = extra["threshold_int8"]
    report["seconds"] = round(time.monotonic() - started)
    meta = {"base": "all-minilm-l6-v2", "trained_on": trained_on, "layers": layers_file.name}
    out.write_text(
        json.dumps(
            {
                "weights": [round(float(w), 6) for w in head.weight.detach()[0]],
                "bias": round(float(head.bias.detach()[0]), 6),
                "threshold": round(threshold, 6),
                **extra,
                "meta": {**meta, **settings, **report},
            }
        )
        + "\n"
    )
    print(json.dumps(report), file=sys.stderr)
    return report
