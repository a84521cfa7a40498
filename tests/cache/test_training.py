"""Training the pair classifier: the QQP pairs split three ways by position (held out,
calibration, training) with no pair in two, and a short run on a small copy of the data writes
weights the tier loads, with their calibration."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import pytest

from stackyard.cache import training
from tests.conftest import need_module, unavailable


def write_data(root: Path, pairs: int) -> Path:
    """A copy of ``../shared/data``'s layout: QQP as a tar inside gzip, MRPC's training file."""
    records = [
        {
            "text_a": f"How do I learn subject {i}?",
            "text_b": f"How can I learn subject {i}?" if i % 2 else f"Why is subject {i} hard?",
            "label": i % 2,
        }
        for i in range(pairs)
    ]
    payload = json.dumps(records).encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("similiar_qqp_full.json")
        info.size = len(payload)
        archive.addfile(info, io.BytesIO(payload))
    (root / "qqp").mkdir(parents=True)
    (root / "qqp" / "similiar_qqp_full.json.gz").write_bytes(gzip.compress(buffer.getvalue()))
    (root / "mrpc").mkdir()
    lines = ["Quality\t#1 ID\t#2 ID\t#1 String\t#2 String"]
    lines += [f"{i % 2}\t{i}\t{i + 1}\tHe said {i} things.\tHe told {i} things." for i in range(8)]
    (root / "mrpc" / "msr_paraphrase_train_backup.txt").write_text("\n".join(lines))
    return root


def test_the_splits_are_disjoint_and_by_position(tmp_path: Path) -> None:
    data = write_data(tmp_path, 100)
    parts = {part: training.qqp_split(data, part) for part in ("test", "calibration", "train")}
    assert [len(parts[p]) for p in ("test", "calibration", "train")] == [20, 20, 60]
    assert parts["test"][0][0] == "How do I learn subject 0?"
    assert parts["calibration"][0][0] == "How do I learn subject 1?"
    test, calibration, train = ({a for a, _, _ in found} for found in parts.values())
    assert not test & calibration
    assert not test & train
    assert not calibration & train
    assert len(training.mrpc_split(data, "train")) == 8


def test_implied_pairs_follow_the_labels_and_never_repeat_a_held_out_pair() -> None:
    import random

    train = [
        ("A", "B", True),
        ("B", "C", True),
        ("C", "D", True),  # A, B, C and D ask the same thing
        ("A", "X", False),  # X differs from all four
        ("P", "Q", True),
        ("Q", "P2", True),
        ("P", "Z", True),
        ("P2", "Z", False),  # P's group is said to differ from itself: nothing from it
        ("L1", "L2", True),
        ("L2", "L3", True),
        ("L3", "L4", True),
        ("L4", "L5", True),  # a group larger than the limit below
    ]
    held_out = [("A", "C", False)]
    found = training.transitive_pairs(train, held_out, random.Random(0), 3, largest=4)
    pairs = {frozenset((a, b)): same for a, b, same in found}
    assert pairs[frozenset(("A", "D"))] is True
    assert pairs[frozenset(("B", "D"))] is True
    assert all(pairs[frozenset((q, "X"))] is False for q in "BCD")
    assert frozenset(("A", "C")) not in pairs  # held out
    assert not {"P", "Q", "P2", "Z", "L1", "L3", "L5"} & {q for pair in pairs for q in pair}
    stated = {frozenset((a, b)) for a, b, _ in train}
    assert not stated & set(pairs)
    assert len(pairs) == len(found)  # each pair once


@pytest.mark.slow
def test_a_short_run_writes_weights_the_tier_loads(tmp_path: Path) -> None:
    need_module("torch")
    from safetensors import safe_open

    from stackyard.cache.pairs import PairModel
    from stackyard.engine.sources import ModelSourceError, resolve

    try:
        directory = resolve("all-minilm-l6-v2", "embeddings").directory
    except ModelSourceError as exc:
        unavailable(str(exc))
    data = write_data(tmp_path / "data", 60)
    out = tmp_path / "verifier.safetensors"
    report = training.train(data, out, epochs=1.0, batch_size=8, limit=16, full=True)
    assert report["steps"] == 2
    with safe_open(str(out), framework="pt") as handle:
        meta = handle.metadata()
    assert meta["mode"] == "full"
    assert meta["calibration_pairs"] == "12"
    assert 0.0 <= float(meta["calibration_accuracy"]) <= 1.0
    assert json.loads(meta["calibration"])  # the table, on the decision scores
    assert "combine" not in meta or len(json.loads(meta["combine"])) == 3
    model = PairModel(directory, out)
    [score] = model.scores([("How do I learn subject 3?", "How can I learn subject 3?")])
    assert 0.0 < score < 1.0


@pytest.mark.slow
def test_a_run_can_go_on_from_weights_with_generated_pairs(tmp_path: Path) -> None:
    need_module("torch")
    from safetensors import safe_open

    from stackyard.engine.sources import ModelSourceError, resolve

    try:
        resolve("all-minilm-l6-v2", "embeddings")
    except ModelSourceError as exc:
        unavailable(str(exc))
    data = write_data(tmp_path / "data", 60)
    first = tmp_path / "first.safetensors"
    training.train(data, first, epochs=1.0, batch_size=8, limit=16, full=True)
    second = tmp_path / "second.safetensors"
    report = training.train(
        data, second, epochs=1.0, batch_size=8, limit=16, full=True, contrast=4, resume=first
    )
    assert report["steps"] == 3  # 16 pairs and 8 generated ones, 8 a batch
    with safe_open(str(second), framework="pt") as handle:
        meta = handle.metadata()
    assert "8 generated contrast and paraphrase pairs" in meta["trained_on"]
    assert "resumed from first.safetensors" in meta["trained_on"]
