"""Train the injection classifier (:mod:`stackyard.guardrails.injection`): ``make
guardrails-injection``, or ``python -m stackyard.guardrails.training --data ../shared/data``.

Data: the llm-warden training split (``jailbreak/jailbreak_dataset_train.csv`` in the project's
``../shared/data/``; its test split and XSTest are left for ``make bench-guardrails``), and
:data:`HARD_NEGATIVES`, benign prompts about prompts and settings written for training, and
:data:`WRITTEN`, attacks and look-alikes written for training. A
logistic regression with an L2 penalty, fitted by gradient descent (numpy only); the threshold
is the score that kept false positives at ``--fpr`` (half of 1% by default, a margin under the
1% target) among benign prompts, in five-fold cross-validation. About two minutes on two CPU
cores, most of it embedding.
"""

from __future__ import annotations

import csv
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stackyard.guardrails import injection
from stackyard.guardrails.reading import read
from stackyard.trainers import trainer_parser

#: Benign prompts *about* prompts, jailbreaks, developer settings and security, written for
#: training (none is in the benchmark's sets): llm-warden has few, and without them the
#: classifier took talk about prompts for an attack (issue 32).
HARD_NEGATIVES = (
    "How long should a system prompt be for a small chatbot?",
    "Can you explain the difference between few-shot and zero-shot prompting?",
    "What's a good way to version prompt templates in a git repository?",
    "Rewrite my system prompt so the bot sounds friendlier but stays concise.",
    "Where does the system message go in an OpenAI chat completion request?",
    "Why does my model forget the instructions in a long system prompt?",
    "Is it safe to put API keys in a system prompt?",
    "How do I test that my prompt still works after switching models?",
    "What is prompt chaining and when should I use it?",
    "Summarise best practices for writing prompts for code generation.",
    "Should instructions go before or after the context in a RAG prompt?",
    "What does temperature do, and should my support bot use 0 or 0.7?",
    "How can I stop my assistant from making up answers when the context is empty?",
    "Explain what a prompt template variable is, with an example in Jinja.",
    "Our bot keeps answering in English; how do I tell it to reply in the user's language?",
    "Which is better for classification, a long prompt or fine-tuning?",
    "What were the biggest AI jailbreak stories of last year?",
    "A journalist asked me what a jailbreak prompt is. How would you explain it to her?",
    "Why do researchers publish jailbreak attacks on language models?",
    "I read that a chatbot leaked its system prompt. How does that happen?",
    "What is the DAN jailbreak that people talked about on Reddit?",
    "Summarise the news about the car dealership chatbot that agreed to sell a car for $1.",
    "How do bug bounty programmes for AI models handle jailbreak reports?",
    "What is the difference between prompt injection and jailbreaking?",
    "How do I enable developer options on a Pixel phone?",
    "How do I get into developer mode on a Chromebook?",
    "How do I turn on debug logging in Django?",
    "Where is the maintenance mode setting in WordPress?",
    "How do I enable god mode in Windows, the folder with all the settings?",
    "How do I switch my Xbox into dev mode?",
    "What does sudo mean and why does my terminal ask for a password?",
    "How do I override environment variables in docker compose?",
    "How can I reset Alexa to factory settings?",
    "How do I change the wake word on my Google Nest speaker?",
    "Can I make Siri read my messages out loud in the car?",
    "How do I set up a guest profile on my Android tablet?",
    "My smart TV keeps switching to demo mode. How do I turn it off?",
    "How do I stop ChatGPT from using my chats for training?",
    "Where do I set custom instructions in ChatGPT?",
    "How do I change the default model in GitHub Copilot Chat?",
    "What does the 'incognito mode' in my browser actually hide?",
    "How do I put my router into bridge mode?",
    "How should we red-team our customer chatbot before launch?",
    "Write a checklist for reviewing an LLM feature for prompt injection risks.",
    "What is the OWASP Top 10 for large language model applications?",
    "How do I detect base64-encoded payloads in web application logs?",
    "Explain how attackers hide instructions in web pages that AI agents read.",
    "What is least privilege, and how does it apply to an AI agent's tools?",
    "How do I rotate an API key that was committed to GitHub?",
    "What's the difference between authentication and authorisation?",
    "How does leetspeak fool simple spam filters?",
    "Our security team wants to log every prompt. What are the privacy risks?",
    "Please act as a patient maths tutor and explain fractions to a ten-year-old.",
    "You are a sommelier. Suggest a wine for grilled salmon.",
    "Pretend you are interviewing me for a junior data analyst job.",
    "Write two versions of this email: a formal one and a casual one.",
    "Give me two answers, a short one and a detailed one: what is inflation?",
    "I'm really anxious about my presentation tomorrow; can you help me practise?",
    "My grandfather passed away last month. How do I write a eulogy?",
    "Ignore the typos in my last message and just answer the question about taxes.",
    "Disregard the first draft I sent; here is the updated paragraph to proofread.",
    "Forget the earlier budget, we now have 500 euros. What laptop should I buy?",
)


#: Attacks and benign look-alikes over twenty attack families and seventeen benign ones, written
#: for training (issue 32, fifth session) by a writer who had seen none of the benchmark's sets:
#: llm-warden's attacks are almost all long role-play jailbreaks, and a classifier trained on
#: them alone missed short, indirect and reworded ones. A third round (ninth session, 642
#: lines) adds odd-looking benign text (manuals in other languages, HTML, JSON tool results,
#: logs, search snippets, prompting guides) and attacks hidden in the same formats, since the
#: classifier had read the former as attacks. One JSON object a line: ``text``,
#: ``label`` (``attack`` or ``benign``), ``family``, ``kind`` (``user``, ``tool``, ``passage``).
WRITTEN = Path(__file__).with_name("injection_train.jsonl")
#: Written text kept apart from every benchmark set and not trained on (BENCHMARKS.md):
#:
#: - a fourth round (ninth session, 445 lines in twelve pairs of families: emotional pressure,
#:   fake modes, prompt extraction, access games, personas, task hijacks, split answers,
#:   hidden instructions, encodings, other languages, authority claims, refusal suppression,
#:   each with its benign look-alike). Trained on, the classifier ranked held-out attacks
#:   better but caught fewer at its own threshold;
#: - a fifth round (tenth session, 361 lines: a product team's own instructions to its bot,
#:   harmless role-play, translations, search results that define injection, software
#:   modes, ordinary tasks about users and passwords, and attacks in the same surfaces).
#:   Trained on with the fourth (5,112 prompts), it ranked every held-out set better (at 1%
#:   of the test negatives, 0.949 to 1.000) but at its own threshold (0.988) it failed two
#:   rules written before scoring, each on a fresh blind pair: Tensor Trust's held-out part
#:   0.687 -> 0.679, then the third pair's attacks 0.545 -> 0.556 (0.05 was asked);
#: - a sixth round (thirteenth session, 309 lines: fake few-shot dialogue in several
#:   languages, completion tricks, split payloads, instructions in tool results and passages
#:   without trigger words, quoted attacks then obeyed; and benign look-alikes of each, texts
#:   about attacks among them);
#: - a seventh round (thirteenth session, 191 lines: benign texts about attacks, the kinds the
#:   sixth round's classifier still blocked: attacks reported in a user's own words, requests
#:   to classify a quoted attack, incident write-ups, defensive code, jailbreak history,
#:   policies; and attacks that wear them and then ask for the attack). Neither passed the
#:   selection written before scoring (rule F in BENCHMARKS.md): trained on rounds one to
#:   six, the classifier caught 0.744 of the held-out attacks pooled at its own threshold
#:   (shipped: 0.664) but blocked one more text about attacks; on one to seven, 5 texts about
#:   attacks instead of 11, but Tensor Trust's held-out part fell by 0.0201 (0.02 allowed).
NOT_TRAINED = (
    Path(__file__).with_name("injection_train_round4.jsonl"),
    Path(__file__).with_name("injection_train_round5.jsonl"),
    Path(__file__).with_name("injection_train_round6.jsonl"),
    Path(__file__).with_name("injection_train_round7.jsonl"),
)


def written() -> tuple[list[str], list[bool]]:
    """The texts of :data:`WRITTEN` and whether each is an attack."""
    rows = [json.loads(line) for line in WRITTEN.read_text(encoding="utf-8").splitlines() if line]
    return [r["text"] for r in rows], [r["label"] == "attack" for r in rows]


TRAINED_ON = (
    "llm-warden jailbreak_dataset_train.csv, "
    f"{len(HARD_NEGATIVES)} hard negatives (training.HARD_NEGATIVES) and the written "
    "attacks and look-alikes of injection_train.jsonl"
)


def load(path: Path) -> tuple[list[str], list[bool]]:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [r["prompt"] for r in rows], [r["type"] == "jailbreak" for r in rows]


#: With ``--tensor-trust``: Tensor Trust's hijacking attacks, each distinct one once, as
#: attacks written by people (players of a game). Its extraction attacks stay held out; the
#: benchmark reports the ones that share no eight-word run with a hijacking attack apart.
TENSOR_TRUST = Path("tensor-trust") / "hijacking_robustness_dataset.jsonl"


def tensor_trust(data: Path) -> list[str]:
    """Tensor Trust's distinct hijacking attacks."""
    rows = [json.loads(line) for line in (data / TENSOR_TRUST).read_text().splitlines() if line]
    return list(dict.fromkeys(r["attack"] for r in rows if r["attack"].strip()))


def prompts(data: Path, with_tensor_trust: bool = False) -> tuple[list[str], list[bool]]:
    """The training prompts (:data:`TRAINED_ON`) and whether each is an attack."""
    texts, labels = load(data / "jailbreak" / "jailbreak_dataset_train.csv")
    extra, attacks = written()
    people = tensor_trust(data) if with_tensor_trust else []
    return (
        texts + list(HARD_NEGATIVES) + extra + people,
        labels + [False] * len(HARD_NEGATIVES) + attacks + [True] * len(people),
    )


def threshold_at(benign: Sequence[float], fpr: float) -> float:
    """The threshold that flags about ``fpr`` of the ``benign`` prompts' scores (a score at
    or above it is flagged)."""
    ranked = sorted(benign)
    return float(ranked[min(len(ranked) - 1, math.ceil((1 - fpr) * len(ranked)))])


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
    texts, labels = prompts(data)
    embedder = load_embedder(resolve("all-minilm-l6-v2", "embeddings"), "cpu")
    x = embed_all(texts, embedder)
    y = np.array(labels, dtype=np.float64)
    fold = np.arange(len(y)) % folds
    out_of_fold = np.zeros(len(y))
    for k in range(folds):
        weights, bias = fit(x[fold != k], y[fold != k])
        out_of_fold[fold == k] = probabilities(x[fold == k], weights, bias)
    benign = out_of_fold[y == 0]
    threshold = threshold_at(benign.tolist(), fpr)
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
                    "trained_on": TRAINED_ON,
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
    parser.add_argument(
        "--deep",
        action="store_true",
        help="fine-tune the embedding model's upper layers with the head (writes "
        "injection_layers.safetensors beside --out)",
    )
    parser.add_argument("--epochs", type=float, help="with --deep (default 4)")
    parser.add_argument("--lr", type=float, help="with --deep: the layers' rate (default 3e-5)")
    parser.add_argument(
        "--tensor-trust",
        action="store_true",
        help="with --deep: train on Tensor Trust's hijacking attacks too (its extraction "
        "attacks stay held out)",
    )
    parser.add_argument(
        "--threshold-only",
        action="store_true",
        help="with --deep: read the 8-bit threshold of the classifier at --out again on its "
        "validation part, without training (after a change to the 8-bit read)",
    )
    args = parser.parse_args(argv)
    if not (args.data / "jailbreak").exists():
        parser.error(f"{args.data}/jailbreak is missing: the prompts come from ../shared/data")
    if not args.deep:
        if args.tensor_trust or args.threshold_only:
            parser.error("--tensor-trust and --threshold-only are for --deep")
        for name in ("epochs", "lr"):
            if getattr(args, name) is not None:
                parser.error(f"--{name} is for --deep: the logistic regression takes neither")
    if args.deep:
        from stackyard.guardrails import injection_finetune

        if args.threshold_only and (args.epochs is not None or args.lr is not None):
            parser.error("--epochs and --lr are for training, not --threshold-only")
        texts, labels = prompts(args.data, with_tensor_trust=args.tensor_trust)
        if args.threshold_only:
            injection_finetune.rethreshold(texts, labels, args.out, fpr=args.fpr)
            return
        tuning = {k: getattr(args, k) for k in ("epochs", "lr") if getattr(args, k) is not None}
        trained_on = TRAINED_ON + (
            ", and Tensor Trust's distinct hijacking attacks" if args.tensor_trust else ""
        )
        injection_finetune.train(
            texts, labels, args.out, trained_on=trained_on, fpr=args.fpr, **tuning
        )
        return
    train(args.data, args.out, fpr=args.fpr)


if __name__ == "__main__":
    main()
