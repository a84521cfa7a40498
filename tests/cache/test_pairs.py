"""The pair classifier: the adapters merged at load give the scores the trained model gave,
the calibration turns an error budget into a threshold, and the shipped weights tell a
paraphrase from a near miss."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from stackyard.cache import pairs as pairmodel
from tests.conftest import need_module, unavailable

torch = need_module("torch", module=True)
transformers = need_module("transformers", module=True)


def minilm() -> Path:
    from stackyard.engine.sources import ModelSourceError, resolve

    try:
        return resolve("all-minilm-l6-v2", "embeddings").directory
    except ModelSourceError as exc:
        unavailable(str(exc))


def trained_scores(model: Any, directory: Path, pairs: list[tuple[str, str]]) -> list[float]:
    """The scores of the model as trained (before it is saved and loaded), one order only."""
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(directory))
    batch = tokenizer(
        [a for a, _ in pairs], [b for _, b in pairs], padding=True, return_tensors="pt"
    )
    with torch.inference_mode():
        found: list[float] = torch.sigmoid(pairmodel.logits(model, dict(batch))).tolist()
    return found


def test_merged_adapters_score_as_the_trained_model(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    directory = minilm()
    torch.manual_seed(1)
    model = pairmodel.build(transformers.AutoModel.from_pretrained(str(directory)))
    with torch.no_grad():  # as if trained: adapters that change the output
        for module in model["encoder"].modules():
            if hasattr(module, "lora_b"):
                module.lora_b.normal_(0, 0.02)
    model.eval()
    weights = tmp_path / "verifier.safetensors"
    table = [[0.9, 0.99, 60], [0.5, 0.9, 120]]
    meta = {"rank": str(pairmodel.RANK), "alpha": str(pairmodel.ALPHA)}
    save_file(
        pairmodel.adapter_state(model), str(weights), {**meta, "calibration": json.dumps(table)}
    )
    pairs = [("How old is the moon?", "What is the age of the moon?"), ("a", "b c d")]
    expected = trained_scores(model, directory, pairs)
    loaded = pairmodel.PairModel(directory, weights)
    assert loaded.scores(pairs, symmetric=False) == pytest.approx(expected, abs=1e-4)
    assert loaded.threshold(0.02) == 0.9
    assert loaded.threshold(0.1) == 0.5


def test_fully_trained_layers_ship_as_8_bit_differences(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    directory = minilm()
    torch.manual_seed(2)
    encoder = transformers.AutoModel.from_pretrained(str(directory))
    base = {k: v.detach().clone() for k, v in encoder.named_parameters()}
    model = pairmodel.build_full(encoder)
    with torch.no_grad():  # as if trained: every layer moved a little, the embeddings not
        for parameter in model["encoder"].parameters():
            if parameter.requires_grad:
                parameter += torch.randn_like(parameter) * 0.01
    assert not any(
        p.requires_grad for n, p in model["encoder"].named_parameters() if "embeddings" in n
    )
    model.eval()
    state = pairmodel.full_state(model, base)
    assert not any("embeddings" in k for k in state)
    assert state["delta.encoder.layer.0.attention.self.query.weight.q"].dtype == torch.int8
    weights = tmp_path / "full.safetensors"
    save_file(state, str(weights), {"mode": "full", "calibration": "[]"})
    pairs = [("How old is the moon?", "What is the age of the moon?"), ("a b", "c")]
    expected = trained_scores(model, directory, pairs)
    loaded = pairmodel.PairModel(directory, weights)
    assert loaded.scores(pairs, symmetric=False) == pytest.approx(expected, abs=2e-3)
    one_way, other_way = loaded.scores([*pairs[:1], pairs[0][::-1]], symmetric=False)
    assert loaded.scores(pairs[:1]) == pytest.approx([(one_way + other_way) / 2], abs=1e-5)


def test_missing_weights_say_how_to_train_them(tmp_path: Path) -> None:
    with pytest.raises(pairmodel.PairModelMissing, match="make cache-verifier"):
        pairmodel.PairModel(tmp_path, tmp_path / "none.safetensors")


def test_calibration_is_precision_above_each_score() -> None:
    scores = [0.99, 0.98, 0.97, 0.96, 0.5, 0.4, 0.0]
    labels = [True, True, False, True, False, False, True]
    table = pairmodel.calibrate(scores, labels, points=7)
    assert [s for s, _, _ in table] == [0.99, 0.98, 0.97, 0.96, 0.5, 0.4]  # 0: never a hit
    assert [p for _, p, _ in table] == pytest.approx([1.0, 1.0, 2 / 3, 0.75, 0.6, 0.5], abs=1e-6)
    assert [n for _, _, n in table] == [1, 2, 3, 4, 5, 6]


def test_the_threshold_is_the_lowest_score_whose_hits_meet_the_budget() -> None:
    model = object.__new__(pairmodel.PairModel)
    few = pairmodel.MIN_HITS - 1
    model.calibration = [
        (0.999, 0.5, few),  # a chance error among the first few: not trusted yet
        (0.99, 1.0, 100),
        (0.98, 0.985, 200),
        (0.97, 0.97, 300),  # breaks a 2% budget...
        (0.9, 0.981, 900),  # ...which the right pairs below make up for
        (0.5, 0.9, 2000),
    ]
    assert model.threshold(0.02) == 0.9
    assert model.threshold(0.01) == 0.99
    assert model.threshold(0.1) == 0.5
    assert model.threshold(0.001) == 0.99
    model.calibration = [(0.99, 0.9, 100)]
    assert model.threshold(0.02) == 1.0
    model.calibration = [(0.99, 1.0, few)]
    assert model.threshold(0.02) == 1.0
    model.calibration = []
    assert model.threshold(0.5) == 1.0


def test_the_shipped_classifier_tells_paraphrases_from_near_misses() -> None:
    if not pairmodel.WEIGHTS.exists():
        unavailable("no trained weights (make cache-verifier)")
    model = pairmodel.PairModel(minilm())
    threshold = model.threshold(0.05)
    assert 0.5 < threshold < model.threshold(0.02) < 1.0  # a smaller budget, fewer hits
    same, other = model.scores(
        [
            ("How can I improve my English speaking?", "How do I get better at speaking English?"),
            ("How can I improve my English speaking?", "How can I improve my French speaking?"),
        ]
    )
    assert same >= threshold
    assert other < threshold


def test_the_decision_rises_with_the_score_and_the_similarity() -> None:
    assert pairmodel.combine(None, 0.7, 0.2) == 0.7  # no combination: the score alone
    weights = (0.8, 3.0, -2.0)
    grid = [(s, near) for s in (0.1, 0.5, 0.9, 0.99) for near in (0.5, 0.7, 0.9)]
    for score, near in grid:
        decided = pairmodel.combine(weights, score, near)
        assert 0.0 < decided < 1.0
        assert pairmodel.combine(weights, min(1.0, score + 0.005), near) > decided
        assert pairmodel.combine(weights, score, near + 0.05) > decided
    assert pairmodel.combine(weights, 1.0, 1.0) < 1.0  # clamped, no overflow
    assert pairmodel.combine((1.0, 0.0, -1000.0), 0.5, 0.5) == 0.0


def test_the_combination_is_fitted_to_both_signals_and_refused_when_one_falls() -> None:
    import random

    rng = random.Random(0)
    scores, near, labels = [], [], []
    for _ in range(2000):
        same = rng.random() < 0.4
        scores.append(min(0.999, max(0.001, rng.gauss(0.75 if same else 0.35, 0.2))))
        near.append(rng.gauss(0.85 if same else 0.7, 0.08))
        labels.append(same)
    fitted = pairmodel.fit_combination(scores, near, labels)
    assert fitted is not None
    w_score, w_similarity, _ = fitted
    assert w_score > 0
    assert w_similarity > 0

    # The fit ranks pairs better than either signal alone (fewer wrong pairs in the top 400).
    def wrong_on_top(values: list[float]) -> int:
        ranked = sorted(zip(values, labels, strict=True), key=lambda p: -p[0])[:400]
        return sum(not same for _, same in ranked)

    decided = [pairmodel.combine(fitted, s, n) for s, n in zip(scores, near, strict=True)]
    assert wrong_on_top(decided) < min(wrong_on_top(scores), wrong_on_top(near))
    # A similarity that falls as pairs get more alike cannot be combined monotonically.
    assert pairmodel.fit_combination(scores, [-n for n in near], labels) is None


def test_a_combination_in_the_file_is_loaded(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    directory = minilm()
    encoder = transformers.AutoModel.from_pretrained(str(directory))
    model = pairmodel.build(encoder)
    meta = {"mode": "lora", "rank": "8", "alpha": "16", "calibration": "[]"}
    weights = tmp_path / "v.safetensors"
    save_file(pairmodel.adapter_state(model), str(weights), {**meta, "combine": "[0.5, 2, -1]"})
    loaded = pairmodel.PairModel(directory, weights)
    assert loaded.combination == (0.5, 2.0, -1.0)
    assert loaded.decide(0.9, 0.8) == pytest.approx(pairmodel.combine((0.5, 2.0, -1.0), 0.9, 0.8))
