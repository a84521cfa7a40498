"""Learn the contrast guard's known paraphrases (:mod:`stackyard.cache.contrast`) from labelled
question pairs: ``make cache-paraphrases``, or ``python -m stackyard.cache.synonyms --data
../shared/data``.

Each pair's content words are aligned (:func:`difflib.SequenceMatcher` on the guard's stems),
and every one-word-for-one-word substitution is counted, in duplicates and in non-duplicates
apart. A substitution that occurs in at least ``--min-duplicates`` duplicates, and in
duplicates at least ``--share`` of the time, is a known paraphrase ("purchase" for "buy"),
unless the hand-written lists call it a contrast or either word is a name. Only the
*training* pairs are read: QQP's training split (:func:`stackyard.cache.training.qqp_split`;
never its held-out or calibration fifths) and MRPC's training file. The result,
``contrast_paraphrases.json`` beside this module, ships with Stackyard.
"""

from __future__ import annotations

import argparse
import difflib
import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from stackyard.cache.contrast import LEARNED, Guard, _negates, parse

Pair = tuple[str, str, bool]


def substitutions(first: str, second: str) -> list[tuple[str, str]]:
    """The one-word substitutions that align ``first`` with ``second`` (stems, sorted within
    each pair); none involving a name."""
    a = parse(first).content
    b = parse(second).content
    matcher = difflib.SequenceMatcher(None, [w.stem for w in a], [w.stem for w in b], False)
    found = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op != "replace" or i2 - i1 != 1 or j2 - j1 != 1:
            continue
        x, y = a[i1], b[j1]
        if x.name or y.name or x.stem == y.stem:
            continue
        found.append((min(x.stem, y.stem), max(x.stem, y.stem)))
    return found


def learn(
    pairs: Iterable[Pair], min_duplicates: int = 3, share: float = 0.8
) -> list[tuple[str, str, int, int]]:
    """(word, word, duplicates, non-duplicates) for each known paraphrase, most seen first."""
    duplicates: Counter[tuple[str, str]] = Counter()
    others: Counter[tuple[str, str]] = Counter()
    for a, b, same in pairs:
        (duplicates if same else others).update(set(substitutions(a, b)))
    guard = Guard()
    kept = []
    for (x, y), seen in duplicates.items():
        against = others[(x, y)]
        if seen < min_duplicates or seen < share * (seen + against):
            continue
        if guard._contrast(x, y) or _negates(x, y) or _negates(y, x):
            continue  # the hand-written lists know better
        kept.append((x, y, seen, against))
    return sorted(kept, key=lambda row: (-row[2], row[0], row[1]))


def main(argv: list[str] | None = None) -> None:
    from stackyard.cache.training import mrpc_split, qqp_split

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--min-duplicates", type=int, default=3)
    parser.add_argument("--share", type=float, default=0.8)
    parser.add_argument("--out", type=Path, default=LEARNED)
    args = parser.parse_args(argv)
    if not (args.data / "qqp").exists():
        parser.error(f"{args.data}/qqp is missing: the training pairs come from ../shared/data")
    training = qqp_split(args.data, "train") + mrpc_split(args.data, "train")
    rows = learn(training, args.min_duplicates, args.share)
    document = {
        "source": "QQP training split and MRPC training file (python -m stackyard.cache.synonyms)",
        "min_duplicates": args.min_duplicates,
        "share": args.share,
        "columns": ["word", "word", "duplicates", "non-duplicates"],
        "pairs": [list(row) for row in rows],
    }
    args.out.write_text(json.dumps(document, indent=0) + "\n")
    print(f"{len(rows)} known paraphrases from {len(training)} training pairs: {args.out}")


if __name__ == "__main__":
    main()
