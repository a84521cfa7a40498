"""The injection rail out of distribution: trained on one source, tested on others.

The detector is the rail as the gateway runs it (the heuristics and the classifier, at the
shipped threshold; tool results and retrieved passages scanned as such), with the classifier
trained on llm-warden's training split only (``make guardrails-injection``). It is tested on:

- llm-warden's test split: the training distribution, for reference (141 jailbreaks, 259
  benign prompts);
- Tensor Trust's hijacking and extraction attacks (``../shared/data/tensor-trust``), each
  distinct ``attack`` once: attacks written by players of a game against an access-code
  prompt, a source the classifier never saw;
- ``benchmarks/data/injection_holdout.jsonl`` (v1): paraphrased attacks written by hand for
  this benchmark, by family (persona, fake modes, override, dual answers, emotional pretexts,
  base64, leetspeak, spaced letters, indirect injections in tool results and RAG passages),
  never used for training or thresholds; but written, by the same hand, just before the
  heuristics for these families, so not blind to them: reported, not to be trusted alone;
- ``benchmarks/data/injection_holdout_v2.jsonl`` (v2): the same families, written afresh
  after the heuristics were done and never looked at one by one (only these per-family
  counts), the hold-out to quote. Neither file is read by any test;
- ``benchmarks/data/injection_holdout_v3.jsonl`` (v3): 90 attacks over nine families (v2's,
  with base64, leetspeak and spaced letters as one "encoded", and prompt extraction added),
  written on 2026-12-06 by a helper that had seen none of the code, the detectors or the
  earlier sets: blind.
- ``benchmarks/data/injection_holdout_v4.jsonl`` (v4): 114 attacks over twelve families
  (v3's, with secret leaks, multilingual attacks and Tensor-Trust-style access games added),
  and ``injection_benign_v3.jsonl``, 109 benign look-alikes over twelve topics, written on
  2026-12-07 by a helper blind to the code, the detectors, the other sets and the training
  text written the same day (lines sharing an eight-word run with training text dropped: 6
  and 11).
- ``benchmarks/data/injection_holdout_v5.jsonl`` (v5): 108 attacks over eleven families
  (v4's but secret leaks), and ``injection_benign_v4.jsonl``, 121 benign look-alikes over
  eleven topics (developers' own instructions to a bot, translations, ordinary stress and
  urgency among them), written on 2026-12-07 (tenth session) by a helper blind to the code,
  the detectors and every other set, to judge a new threshold rule (lines sharing an
  eight-word run with any training text or other set dropped: 24 and 11). Scored twice (the
  shipped threshold and one candidate), then benign v4's false positives were read one by
  one: a development set since.
- ``benchmarks/data/injection_holdout_v6.jsonl`` (v6): 107 attacks over thirteen families
  (v5's, with fake configurations and hypothetical framings added), and
  ``injection_benign_v5.jsonl``, 117 benign look-alikes over thirteen topics, written the
  same day by another blind helper, before a fifth round of training text was trained on
  (lines sharing an eight-word run with any training text or other set dropped: 23 and 13).
- ``benchmarks/data/injection_holdout_v7.jsonl`` (v7): 99 attacks over twelve families
  (refusal suppression, split payloads, completion tricks, few-shot examples, authority
  claims, virtual machines among them; a fifth in other languages), and
  ``injection_benign_v6.jsonl``, 113 benign look-alikes over twelve topics (customer support,
  coding help, pasted suspicious messages, games among them), written the same day by a
  third blind helper, after the fifth round was trained on, to judge it a second time
  (lines sharing an eight-word run with any training text, the fifth round included, or
  another set dropped: 21 and 7).
- ``benchmarks/data/injection_holdout_v8.jsonl`` (v8): 61 attacks that write the
  assistant's consent for it (fake few-shot exchanges in which it complies, and completion
  tricks), and ``injection_benign_v7.jsonl``, 64 look-alikes (few-shot prompts for ordinary
  tasks, pasted transcripts, scripts, texts to continue), written the same day by a blind
  helper to judge the ``fake_dialogue`` heuristic, whose pattern was written from the
  families' names alone (3 attacks dropped by the overlap check).

Negatives: XSTest's 250 safe prompts, and ``benchmarks/data/injection_benign.jsonl``: benign
questions written by hand about prompts, system prompts, jailbreaks in the news, developer
settings, device and assistant configuration and security, and benign tool results and
passages (scanned as tool or RAG text); and ``injection_benign_v2.jsonl``, 90 benign
look-alikes written blind with v3 (prompts, security, settings, harmless role-play, quoted
attacks in the news, ordinary tool results).

``benchmarks/data/injection_reported_dev.jsonl``: 160 benign texts that quote, describe or ask
about an attack (news, tickets, tests, questions on defences, jailbreak history) and 90 attacks
hiding behind the same frames ("my boss said '...', so do it"), written by a helper on
2026-12-06 blind to the code and the other sets. The rule that sets reported attacks aside
(:mod:`stackyard.guardrails.reported`) was tuned on it: a development set, not a hold-out.

Reported per set: the share flagged by the rail (detection on attacks, false positives on
benign sets), by the heuristics alone and by the classifier alone; per hand-written family;
and, for reference only, the rail's detection on the held-out attacks at the threshold that
would allow 1% false positives over both hand-written benign sets and XSTest (a threshold read
off the test negatives, so an optimistic figure, never shipped).

``--src PATH`` runs another version's detector (``git worktree add /tmp/base <commit>``, then
``--src /tmp/base/src``), so that before and after are measured the same way.

Run: ``python -m benchmarks.guardrails_injection``. The first run embeds about 2,100 texts
(several minutes on two cores); each text's classifier input is kept (``--features``), so
later runs, of any version or after retraining, take seconds.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import hashlib
import inspect
import json
import math
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"
REPORTED_DEV = HERE / "data" / "injection_reported_dev.jsonl"


@dataclass(frozen=True, slots=True)
class Case:
    text: str
    role: str  # user, tool or rag: how the rail reads it
    group: str  # the set's family or topic


def jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


@dataclass(frozen=True, slots=True)
class HandWritten:
    """A hand-written set: its label in the tables, its file, its short tag (for the tables by
    family and by topic) and whether it holds attacks (grouped by ``family``) or benign texts
    (by ``topic``)."""

    label: str
    file: str
    tag: str
    attacks: bool

    def cases(self) -> list[Case]:
        group = "family" if self.attacks else "topic"
        rows = jsonl(HERE / "data" / self.file)
        return [Case(r["text"], r["role"], r[group]) for r in rows]


#: Every hand-written set, in the order of the tables.
HAND_WRITTEN = (
    HandWritten(
        "hand-written attacks v1 (seen while writing the heuristics)",
        "injection_holdout.jsonl",
        "v1",
        True,
    ),
    HandWritten(
        "hand-written attacks v2 (fresh hold-out)", "injection_holdout_v2.jsonl", "v2", True
    ),
    HandWritten(
        "hand-written attacks v3 (written blind, fresh hold-out)",
        "injection_holdout_v3.jsonl",
        "v3",
        True,
    ),
    HandWritten(
        "hand-written attacks v4 (written blind, fresh hold-out)",
        "injection_holdout_v4.jsonl",
        "v4",
        True,
    ),
    HandWritten(
        "hand-written attacks v5 (written blind, fresh hold-out)",
        "injection_holdout_v5.jsonl",
        "v5",
        True,
    ),
    HandWritten(
        "hand-written attacks v6 (written blind, fresh hold-out)",
        "injection_holdout_v6.jsonl",
        "v6",
        True,
    ),
    HandWritten(
        "hand-written attacks v7 (written blind, fresh hold-out)",
        "injection_holdout_v7.jsonl",
        "v7",
        True,
    ),
    HandWritten(
        "hand-written attacks v8, fake dialogue (written blind, fresh hold-out)",
        "injection_holdout_v8.jsonl",
        "v8",
        True,
    ),
    HandWritten(
        "hand-written benign, about prompts and settings",
        "injection_benign.jsonl",
        "benign",
        False,
    ),
    HandWritten(
        "hand-written benign v2 (written blind)", "injection_benign_v2.jsonl", "benign v2", False
    ),
    HandWritten(
        "hand-written benign v3 (written blind)", "injection_benign_v3.jsonl", "benign v3", False
    ),
    HandWritten(
        "hand-written benign v4 (written blind)", "injection_benign_v4.jsonl", "benign v4", False
    ),
    HandWritten(
        "hand-written benign v5 (written blind)", "injection_benign_v5.jsonl", "benign v5", False
    ),
    HandWritten(
        "hand-written benign v6 (written blind)", "injection_benign_v6.jsonl", "benign v6", False
    ),
    HandWritten(
        "hand-written benign v7, dialogue (written blind)",
        "injection_benign_v7.jsonl",
        "benign v7",
        False,
    ),
)
#: The hand-written sets' short tags by label.
TAGS = {written.label: written.tag for written in HAND_WRITTEN}
#: The negatives of the reference at 1% false positives: XSTest and these hand-written sets.
REFERENCE_NEGATIVES = ("benign", "benign v2")


WARDEN_BENIGN = "llm-warden test benign (in distribution)"
#: The held-out attack sets scored at 1% false positives (issue 32's measure), by short tag.
REFERENCE_SETS = {
    "tensor_trust_hijacking": "Tensor Trust hijacking attacks (distinct)",
    "tensor_trust_extraction": "Tensor Trust extraction attacks (distinct)",
    **{
        "held_out" if written.tag == "v2" else written.tag: written.label
        for written in HAND_WRITTEN
        if written.attacks and written.tag != "v1"
    },
}


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
    distinct: dict[str, list[str]] = {}
    for name in ("hijacking", "extraction"):
        path = data / "tensor-trust" / f"{name}_robustness_dataset.jsonl"
        attacks = dict.fromkeys(row["attack"] for row in jsonl(path) if row["attack"].strip())
        distinct[name] = list(attacks)
        sets[f"Tensor Trust {name} attacks (distinct)"] = (
            True,
            [Case(text, "user", name) for text in attacks],
        )
    # The extraction attacks that share no eight-word run with a hijacking attack: the part
    # of the set still held out when a classifier is trained on the hijacking attacks
    # (``python -m stackyard.guardrails.training --tensor-trust``).
    hijacking = set().union(*(eight_word_runs(text) for text in distinct["hijacking"]))
    sets["Tensor Trust extraction attacks, none sharing a run with hijacking"] = (
        True,
        [
            Case(text, "user", "extraction")
            for text in distinct["extraction"]
            if not eight_word_runs(text) & hijacking
        ],
    )
    for written in HAND_WRITTEN:
        if written.attacks:
            sets[written.label] = (True, written.cases())
    sets[WARDEN_BENIGN] = (
        False,
        [Case(r["prompt"], "user", "warden") for r in warden if r["type"] == "benign"],
    )
    sets["XSTest safe prompts"] = (False, [Case(text, "user", "xstest") for text in xstest])
    for written in HAND_WRITTEN:
        if not written.attacks:
            sets[written.label] = (False, written.cases())
    reported = jsonl(REPORTED_DEV)
    for is_attack, name in ((False, "benign"), (True, "attacks")):
        sets[f"reported attacks dev set: {name} (tuned on)"] = (
            is_attack,
            [
                Case(r["text"], "user", r["kind"])
                for r in reported
                if (r["label"] == "attack") == is_attack
            ],
        )
    return sets


def eight_word_runs(text: str) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    return {tuple(words[i : i + 8]) for i in range(len(words) - 7)}


def where(case: Case) -> str:
    return "rag passage [0]" if case.role == "rag" else "messages[0].content"


def read_version(detector: Any) -> str:
    """What a text's classifier input depends on, besides the text: the code that reads it
    (``reading.py``, ``onnxgraph.py`` and :func:`~stackyard.guardrails.injection.features`)
    and, for a fine-tuned classifier, its own layers' weights and whether they run in 8 bits.
    Until the tenth session the key held only the head's bias and threshold, so a change to
    the reading code or the layers with the same head could reuse stale reads; until the
    twelfth, the 8-bit arithmetic's (``onnxgraph.py``) was missing too."""
    from stackyard import onnxgraph
    from stackyard.guardrails import injection, reading

    digest = hashlib.sha256()
    digest.update(Path(inspect.getfile(reading)).read_bytes())
    digest.update(Path(inspect.getfile(onnxgraph)).read_bytes())
    digest.update(inspect.getsource(injection.features).encode())
    upper = getattr(detector, "upper", None)
    if upper is not None:
        for name, value in sorted(upper.state_dict().items()):
            digest.update(name.encode())
            if hasattr(value, "is_quantized") and value.is_quantized:
                value = value.dequantize()
            if hasattr(value, "detach"):
                digest.update(value.detach().float().cpu().numpy().tobytes())
            else:  # packed 8-bit parameters
                digest.update(repr(value).encode())
        eight_bits = reading.quantizes(detector.embedder, upper)
        digest.update(f"{type(upper).__name__}:{eight_bits}".encode())
    return digest.hexdigest()[:16] + ":"


class Features:
    """Each text's classifier input (:func:`stackyard.guardrails.injection.features`, the
    embedding model's read of it), kept on disk by the text's hash and :func:`read_version`:
    versions of the detector that share the reading code and the classifier's own layers
    share them, so a second run does not embed the texts again."""

    def __init__(self, path: Path | None) -> None:
        import numpy as np

        self.path = path
        self.rows: dict[str, Any] = {}
        if path is not None and path.exists():
            with np.load(path) as stored:
                self.rows = {key: stored[key] for key in stored.files}
        self.added = 0
        #: The detector last read for, and its :func:`read_version` (worked out once).
        self.reader: tuple[Any, str] | None = None

    def of(self, detector: Any, text: str) -> Any:
        from stackyard.guardrails.injection import features
        from stackyard.guardrails.reading import read

        upper = getattr(detector, "upper", None)  # a fine-tuned classifier's own layers
        if self.reader is None or self.reader[0] is not detector:
            self.reader = (detector, read_version(detector))
        key = hashlib.sha256((self.reader[1] + text).encode()).hexdigest()
        if key not in self.rows:
            if upper is not None:
                reading = read(detector.embedder, text, whole=True, upper=upper)
            else:
                reading = read(detector.embedder, text, whole=True)
            self.rows[key] = features(reading.vectors, len(text))
            self.added += 1
        return self.rows[key]

    def save(self) -> None:
        import numpy as np

        if self.path is not None and self.added:
            np.savez(self.path, **self.rows)


def score(detector: Any, cases: list[Case], cache: Features) -> list[tuple[bool, float, list[str]]]:
    """Per case: whether a heuristic fired, the classifier's probability, and the names of
    the detectors that fired at the shipped threshold. The heuristics run as the rail runs
    them (tool and RAG text passed as such when this version's ``scan`` takes ``indirect``);
    the classifier's probability is its weights on the text's features, as
    :meth:`InjectionDetector.probabilities` computes it, from ``cache``."""
    takes_indirect = "indirect" in inspect.signature(detector.scan).parameters
    rules = type(detector)(None)  # the same version's heuristics alone
    out = []
    for case in cases:
        items = [(where(case), case.text)]
        if takes_indirect:
            indirect = {where(case)} if case.role != "user" else set()
            found = rules.scan(items, None, indirect=indirect)
        else:
            found = rules.scan(items)
        names = sorted({f.detector for f in found})
        x = float(cache.of(detector, case.text) @ detector.weights + detector.bias)
        probability = 1 / (1 + math.exp(-x))
        fired = names + (["classifier"] if probability >= detector.threshold else [])
        out.append((bool(names), probability, fired))
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


def report(
    sets: dict[str, tuple[bool, list[Case]]], detector: Any, cache: Features
) -> dict[str, Any]:
    """Rates per set and per hand-written group, and the reference at 1% false positives."""
    threshold = detector.threshold
    results: dict[str, Any] = {"threshold": threshold, "sets": {}, "groups": {}}
    scored: dict[str, list[tuple[bool, float, list[str]]]] = {}
    for name, (attacks, cases) in sets.items():
        started = time.perf_counter()
        scored[name] = rows = score(detector, cases, cache)
        results["sets"][name] = {
            "attacks": attacks,
            "n": len(cases),
            "rail": share([bool(fired) for _, _, fired in rows]),
            "heuristics": share([rule for rule, _, _ in rows]),
            "classifier": share([p >= threshold for _, p, _ in rows]),
            "seconds": round(time.perf_counter() - started, 1),
        }
        if name in TAGS:
            tag = TAGS[name]
            for case, (_, _, fired) in zip(cases, rows, strict=True):
                counts = results["groups"].setdefault(f"{tag}:{case.group}", [0, 0])
                counts[0] += bool(fired)
                counts[1] += 1
    negatives = [
        max(1.0 if rule else 0.0, p)
        for name in (
            "XSTest safe prompts",
            *(w.label for w in HAND_WRITTEN if w.tag in REFERENCE_NEGATIVES),
        )
        for rule, p, _ in scored[name]
    ]
    ordinary = [max(1.0 if rule else 0.0, p) for rule, p, _ in scored[WARDEN_BENIGN]]
    for key, pool in (("reference_1pct", negatives), ("reference_1pct_all", negatives + ordinary)):
        ranked = sorted(pool, reverse=True)
        cut = ranked[int(0.01 * len(ranked))]
        results[key] = {"threshold": cut}
        for tag, name in REFERENCE_SETS.items():
            held = [max(1.0 if rule else 0.0, p) for rule, p, _ in scored[name]]
            results[key][tag] = share([s > cut for s in held])
    return results


def table(results: dict[str, Any], label: str) -> list[str]:
    lines = [
        f"Detector: {label}; classifier threshold {results['threshold']:.3f}.",
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
    groups = results["groups"]
    attack_sets = [w for w in HAND_WRITTEN if w.attacks]
    families = sorted({g.split(":", 1)[1] for g in groups if not g.startswith("benign")})
    lines += [
        "",
        "| attack family | "
        + " | ".join(
            f"{w.tag} caught" + (" (blind)" if "blind" in w.label else "") for w in attack_sets
        )
        + " |",
        "| --- |" + " ---: |" * len(attack_sets),
    ]
    for family in families:
        cells = []
        for tag in (w.tag for w in attack_sets):
            caught, n = groups.get(f"{tag}:{family}", [0, 0])
            cells.append(f"{caught}/{n}" if n else "")
        lines.append(f"| {family} | {' | '.join(cells)} |")
    lines += ["", "| benign set: topic | flagged |", "| --- | ---: |"]
    for group in sorted(g for g in groups if g.startswith("benign")):
        caught, n = groups[group]
        lines.append(f"| {group.replace(':', ': ')} | {caught}/{n} |")
    ref, every = results["reference_1pct"], results["reference_1pct_all"]
    caught = ", ".join(f"{tag} {ref[tag]:.3f}" for tag in REFERENCE_SETS)
    caught_all = ", ".join(f"{tag} {every[tag]:.3f}" for tag in REFERENCE_SETS)
    lines += [
        "",
        f"The issue's measure, true positives at 1% false positives over XSTest and both "
        f"hand-written benign sets (threshold {ref['threshold']:.3f}, read off those test "
        f"negatives, so never shipped): caught {caught}.",
        "",
        f"The same with llm-warden's benign test prompts in the pool too (threshold "
        f"{every['threshold']:.3f}): caught {caught_all}.",
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", type=Path, help="import stackyard from this src directory")
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    parser.add_argument(
        "--features",
        type=Path,
        default=Path("/tmp/stackyard-injection-features.npz"),
        help="where each text's classifier input is kept between runs",
    )
    parser.add_argument(
        "--threshold",
        type=float,
        help="score the classifier at this threshold instead of the shipped one (to judge a "
        "candidate threshold rule before shipping it)",
    )
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
    if args.threshold is not None:
        detector.threshold = args.threshold
    cache = Features(args.features)
    try:
        results = report(load_sets(), detector, cache)
    finally:
        cache.save()
    label = f"stackyard at {commit_of(src)} ({src})"
    if args.threshold is not None:
        label += f", its classifier at a candidate threshold ({args.threshold}), not shipped"
    command = "python -m benchmarks.guardrails_injection " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    print(f"{datetime.date.today().isoformat()}; command: `{command.strip()}`\n")
    print("\n".join(table(results, label)))
    if args.json:
        args.json.write_text(json.dumps({"label": label, **results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
