"""Train the injection classifier (:mod:`stackyard.guardrails.injection`): ``make
guardrails-injection``, or ``python -m stackyard.guardrails.training --data ../shared/data``.

Data: the llm-warden training split (``jailbreak/jailbreak_dataset_train.csv`` in the project's
``../shared/data/``; its test split and XSTest are left for ``make bench-guardrails``). A
logistic regression with an L2 penalty, fitted by gradient descent (numpy only); the threshold
is the score that kept false positives at ``--fpr`` (half of 1% by default, a margin under the
1% target) among benign prompts, in five-fold cross-validation. About two minutes on two CPU
cores, most of it embedding.
"""

from __future__ import annotations

import csv
import json
import sys
import time
from pathlib import Path
from typing import Any

from stackyard.guardrails import injection
from stackyard.guardrails.reading import read
from stackyard.trainers import trainer_parser


def load(path: Path) -> tuple[list[str], list[bool]]:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [r["prompt"] for r in rows], [r["type"] == "jailbreak" for r in rows]


def embed_all(texts: list[str], embedder: Any) -> Any:
    """Each text's features, read as the rail reads it (windows of word pieces)."""
    import numpy as np

    rows = []
    for number, text in enumerate(texts):
        reading = read(embedder, text, whole=True)
        rows.append(injection.features(reading.vectors, len(text)))
        if sys.stderr.isatty() and number % 100 == 0:
            print(f"\r{number}/{len(texts)}", end="", file=sys.stderr)
    return np.stack(rows).astype(np.float64)


def fit(x: Any, y: Any, l2: float = 1e-3, steps: int = 3000, lr: float = 0.05) -> tuple[Any, float]:
    """Logistic regression by full-batch Adam; classes weighted to balance."""
    import numpy as np

    weights = np.zeros(x.shape[1])
    bias = 0.0
    balance = np.where(y, 0.5 / y.mean(), 0.5 / (1 - y.mean()))
    m = np.zeros(x.shape[1] + 1)
    v = np.zeros(x.shape[1] + 1)
    for step in range(1, steps + 1):
        p = 1 / (1 + np.exp(-(x @ weights + bias)))
        error = (p - y) * balance / len(y)
        grad = np.concatenate([x.T @ error + l2 * weights, [error.sum()]])
        m = 0.9 * m + 0.1 * grad
        v = 0.999 * v + 0.001 * grad**2
        update = lr * (m / (1 - 0.9**step)) / (np.sqrt(v / (1 - 0.999**step)) + 1e-8)
        weights -= update[:-1]
        bias -= float(update[-1])
    return weights, bias


def probabilities(x: Any, weights: Any, bias: float) -> Any:
    import numpy as np

    return 1 / (1 + np.exp(-(x @ weights + bias)))


def train(data: Path, out: Path, fpr: float = 0.005, folds: int = 5) -> dict[str, Any]:
    import numpy as np

    from stackyard.engine.loading import load_embedder
    from stackyard.engine.sources import resolve

    started = time.monotonic()
    texts, labels = load(data / "jailbreak" / "jailbreak_dataset_train.csv")
    embedder = load_embedder(resolve("all-minilm-l6-v2", "embeddings"), "cpu")
    x = embed_all(texts, embedder)
    y = np.array(labels, dtype=np.float64)
    fold = np.arange(len(y)) % folds
    out_of_fold = np.zeros(len(y))
    for k in range(folds):
        weights, bias = fit(x[fold != k], y[fold != k])
        out_of_fold[fold == k] = probabilities(x[fold == k], weights, bias)
    benign = np.sort(out_of_fold[y == 0])
    threshold = float(benign[min(len(benign) - 1, int(np.ceil((1 - fpr) * len(benign))))])
    caught = float((out_of_fold[y == 1] >= threshold).mean())
    weights, bias = fit(x, y)
    report = {
        "prompts": len(texts),
        "cv_true_positive_rate": round(caught, 4),
        "cv_false_positive_rate": round(float((benign >= threshold).mean()), 4),
        "threshold": round(threshold, 6),
        "seconds": round(time.monotonic() - started),
    }
    out.write_text(
        json.dumps(
            {
                "weights": [round(float(w), 6) for w in weights],
                "bias": round(bias, 6),
                "threshold": round(threshold, 6),
                "meta": {
                    "base": "all-minilm-l6-v2",
                    "trained_on": "llm-warden jailbreak_dataset_train.csv",
                    **report,
                },
            }
        )
        + "\n"
    )
    print(json.dumps(report), file=sys.stderr)
    return report


def main(argv: list[str] | None = None) -> None:
    parser = trainer_parser(__doc__, injection.WEIGHTS)
    parser.add_argument("--fpr", type=float, default=0.005, help="false positives allowed")
    args = parser.parse_args(argv)
    if not (args.data / "jailbreak").exists():
        parser.error(f"{args.data}/jailbreak is missing: the prompts come from ../shared/data")
    train(args.data, args.out, fpr=args.fpr)


if __name__ == "__main__":
    main()
