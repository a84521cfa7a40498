"""The injection rail out of distribution: trained on one source, tested on others.

The detector is the rail as the gateway runs it (the heuristics and the classifier, at the
shipped threshold; tool results and retrieved passages scanned as such), with the classifier
trained on llm-warden's training split only (``make guardrails-injection``). It is tested on:

- llm-warden's test split: the training distribution, for reference (141 jailbreaks, 259
  benign prompts);
- Tensor Trust's hijacking and extraction attacks (``../shared/data/tensor-trust``), each
  distinct ``attack`` once: attacks written by players of a game against an access-code
  prompt, a source the classifier never saw;
- ``benchmarks/data/injection_holdout.jsonl``: paraphrased attacks written by hand for this
  benchmark, by family (persona, fake modes, override, dual answers, emotional pretexts,
  base64, leetspeak, spaced letters, indirect injections in tool results and RAG passages),
  never used for training, for thresholds or to write the heuristics' tests.

Negatives: XSTest's 250 safe prompts, and ``benchmarks/data/injection_benign.jsonl``: benign
questions written by hand about prompts, system prompts, jailbreaks in the news, developer
settings, device and assistant configuration and security, and benign tool results and
passages (scanned as tool or RAG text).

Reported per set: the share flagged by the rail (detection on attacks, false positives on
benign sets), by the heuristics alone and by the classifier alone; per hand-written family;
and, for reference only, the rail's detection on the held-out attacks at the threshold that
would allow 1% false positives over the hand-written and XSTest negatives (a threshold read
off the test negatives, so an optimistic figure, never shipped).

``--src PATH`` runs another version's detector (``git worktree add /tmp/base <commit>``, then
``--src /tmp/base/src``), so that before and after are measured the same way.

Run: ``python -m benchmarks.guardrails_injection`` (about three minutes on two cores, most of
it the embedding model).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import inspect
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"
HOLDOUT = HERE / "data" / "injection_holdout.jsonl"
BENIGN = HERE / "data" / "injection_benign.jsonl"


@dataclass(frozen=True, slots=True)
class Case:
    text: str
    role: str  # user, tool or rag: how the rail reads it
    group: str  # the set's family or topic


def jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def load_sets(data: Path = DATA) -> dict[str, tuple[bool, list[Case]]]:
    """Each set by name: (attacks?, its cases)."""
    with (data / "jailbreak" / "jailbreak_dataset_test.csv").open(newline="") as handle:
        warden = list(csv.DictReader(handle))
    with (data / "xstest" / "xstest_prompts.csv").open(newline="") as handle:
        xstest = [r["prompt"] for r in csv.DictReader(handle) if r["label"] == "safe"]
    sets: dict[str, tuple[bool, list[Case]]] = {
        "llm-warden test jailbreaks (in distribution)": (
            True,
            [Case(r["prompt"], "user", "warden") for r in warden if r["type"] == "jailbreak"],
        ),
    }
    for name in ("hijacking", "extraction"):
        path = data / "tensor-trust" / f"{name}_robustness_dataset.jsonl"
        attacks = dict.fromkeys(row["attack"] for row in jsonl(path) if row["attack"].strip())
        sets[f"Tensor Trust {name} attacks (distinct)"] = (
            True,
            [Case(text, "user", name) for text in attacks],
        )
    sets["hand-written paraphrased attacks (hold-out)"] = (
        True,
        [Case(r["text"], r["role"], r["family"]) for r in jsonl(HOLDOUT)],
    )
    sets["llm-warden test benign (in distribution)"] = (
        False,
        [Case(r["prompt"], "user", "warden") for r in warden if r["type"] == "benign"],
    )
    sets["XSTest safe prompts"] = (False, [Case(text, "user", "xstest") for text in xstest])
    sets["hand-written benign, about prompts and settings"] = (
        False,
        [Case(r["text"], r["role"], r["topic"]) for r in jsonl(BENIGN)],
    )
    return sets


def where(case: Case) -> str:
    return "rag passage [0]" if case.role == "rag" else "messages[0].content"


def score(detector: Any, cases: list[Case]) -> list[tuple[bool, float, list[str]]]:
    """Per case: whether a heuristic fired, the classifier's probability, and the names of
    the detectors that fired at the shipped threshold. Tool and RAG text is passed as such
    when this version's ``scan`` takes ``indirect``."""
    shipped = detector.threshold
    takes_indirect = "indirect" in inspect.signature(detector.scan).parameters
    detector.threshold = -1.0  # every text gets the classifier's finding, with its score
    out = []
    try:
        for case in cases:
            items = [(where(case), case.text)]
            if takes_indirect:
                indirect = {where(case)} if case.role != "user" else set()
                found = detector.scan(items, None, indirect=indirect)
            else:
                found = detector.scan(items)
            probability = max((f.score for f in found if f.detector == "classifier"), default=0.0)
            rules = sorted({f.detector for f in found if f.detector != "classifier"})
            fired = rules + (["classifier"] if probability >= shipped else [])
            out.append((bool(rules), probability, fired))
    finally:
        detector.threshold = shipped
    return out


def commit_of(src: Path) -> str:
    try:
        return subprocess.run(
            ["git", "-C", str(src), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def share(flags: list[bool]) -> float:
    return sum(flags) / max(1, len(flags))


def report(sets: dict[str, tuple[bool, list[Case]]], detector: Any) -> dict[str, Any]:
    """Rates per set and per hand-written group, and the reference at 1% false positives."""
    threshold = detector.threshold
    results: dict[str, Any] = {"threshold": threshold, "sets": {}, "groups": {}, "misses": {}}
    scored: dict[str, list[tuple[bool, float, list[str]]]] = {}
    for name, (attacks, cases) in sets.items():
        started = time.perf_counter()
        scored[name] = rows = score(detector, cases)
        results["sets"][name] = {
            "attacks": attacks,
            "n": len(cases),
            "rail": share([bool(fired) for _, _, fired in rows]),
            "heuristics": share([rule for rule, _, _ in rows]),
            "classifier": share([p >= threshold for _, p, _ in rows]),
            "seconds": round(time.perf_counter() - started, 1),
        }
        if name.startswith("hand-written"):
            for case, (_, _, fired) in zip(cases, rows, strict=True):
                counts = results["groups"].setdefault(f"{attacks}:{case.group}", [0, 0])
                counts[0] += bool(fired)
                counts[1] += 1
                if bool(fired) != attacks:
                    results["misses"].setdefault(name, []).append(case.text[:60])
    negatives = [
        max(1.0 if rule else 0.0, p)
        for name in ("XSTest safe prompts", "hand-written benign, about prompts and settings")
        for rule, p, _ in scored[name]
    ]
    held = [
        max(1.0 if rule else 0.0, p)
        for rule, p, _ in scored["hand-written paraphrased attacks (hold-out)"]
    ]
    ranked = sorted(negatives, reverse=True)
    cut = ranked[int(0.01 * len(ranked))]
    results["reference_1pct"] = {"threshold": cut, "held_out": share([s > cut for s in held])}
    return results


def table(results: dict[str, Any], label: str) -> list[str]:
    lines = [
        f"Detector: {label}; classifier threshold {results['threshold']:.3f} (shipped).",
        "",
        "| set | texts | flagged by the rail | heuristics alone | classifier alone |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, r in results["sets"].items():
        kind = "caught" if r["attacks"] else "false positives"
        lines.append(
            f"| {name} ({kind}) | {r['n']} | {r['rail']:.3f} | {r['heuristics']:.3f} | "
            f"{r['classifier']:.3f} |"
        )
    lines += ["", "| hand-written group | flagged |", "| --- | ---: |"]
    for group, (flagged, n) in sorted(results["groups"].items(), reverse=True):
        kind = "attack" if group.startswith("True") else "benign"
        lines.append(f"| {kind}: {group.split(':', 1)[1]} | {flagged}/{n} |")
    ref = results["reference_1pct"]
    lines += [
        "",
        f"Reference only (threshold read off the test negatives): at 1% false positives over "
        f"XSTest and the hand-written benign set (threshold {ref['threshold']:.3f}), "
        f"{ref['held_out']:.3f} of the hand-written attacks are caught.",
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", type=Path, help="import stackyard from this src directory")
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    parser.add_argument("--misses", action="store_true", help="print what was decided wrong")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if not DATA.exists():
        print(f"the data sets are not here: {DATA}", file=sys.stderr)
        return 2
    src = (args.src or HERE.parent / "src").resolve()
    sys.path.insert(0, str(src))
    from stackyard.engine.loading import load_embedder
    from stackyard.engine.sources import resolve
    from stackyard.guardrails.injection import InjectionDetector

    embedder = load_embedder(resolve("all-minilm-l6-v2", "embeddings"), "cpu")
    detector = InjectionDetector(embedder)
    results = report(load_sets(), detector)
    label = f"stackyard at {commit_of(src)} ({src})"
    command = "python -m benchmarks.guardrails_injection " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    print(f"{datetime.date.today().isoformat()}; command: `{command.strip()}`\n")
    print("\n".join(table(results, label)))
    if args.misses:
        print(json.dumps(results["misses"], indent=1))
    if args.json:
        args.json.write_text(json.dumps({"label": label, **results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
