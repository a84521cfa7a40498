"""The pair classifier: the adapters merged at load give the scores the trained model gave,
the calibration turns an error budget into a threshold, and the shipped weights tell a
paraphrase from a near miss."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stackyard.cache import pairs as pairmodel

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


def minilm() -> Path:
    from stackyard.engine.sources import ModelSourceError, resolve

    try:
        return resolve("all-minilm-l6-v2", "embeddings").directory
    except ModelSourceError as exc:
        pytest.skip(str(exc))


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
    table = [[0.9, 0.99], [0.5, 0.9]]
    meta = {"rank": str(pairmodel.RANK), "alpha": str(pairmodel.ALPHA)}
    save_file(
        pairmodel.adapter_state(model), str(weights), {**meta, "calibration": json.dumps(table)}
    )
    pairs = [("How old is the moon?", "What is the age of the moon?"), ("a", "b c d")]
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(directory))
    batch = tokenizer(
        [a for a, _ in pairs], [b for _, b in pairs], padding=True, return_tensors="pt"
    )
    with torch.inference_mode():
        expected = torch.sigmoid(pairmodel.logits(model, dict(batch))).tolist()
    loaded = pairmodel.PairModel(directory, weights)
    assert loaded.scores(pairs) == pytest.approx(expected, abs=1e-4)
    assert loaded.threshold(0.02) == 0.9
    assert loaded.threshold(0.1) == 0.5


def test_missing_weights_say_how_to_train_them(tmp_path: Path) -> None:
    with pytest.raises(pairmodel.PairModelMissing, match="make cache-verifier"):
        pairmodel.PairModel(tmp_path, tmp_path / "none.safetensors")


def test_calibration_is_precision_above_each_score() -> None:
    scores = [0.99, 0.98, 0.97, 0.96, 0.5, 0.4]
    labels = [True, True, False, True, False, False]
    table = pairmodel.calibrate(scores, labels, points=6)
    assert [s for s, _ in table] == sorted((s for s, _ in table), reverse=True)
    assert table[0] == [0.99, 1.0]
    assert table[1] == [0.98, 1.0]
    assert table[2][1] == pytest.approx(2 / 3, abs=1e-6)
    # Never rises again as the score falls (0.96 has 3/4, but 0.97 already had 2/3).
    assert table[3][1] == pytest.approx(2 / 3, abs=1e-6)
    assert table[-1][1] == pytest.approx(0.5, abs=1e-6)


def test_the_shipped_classifier_tells_paraphrases_from_near_misses() -> None:
    if not pairmodel.WEIGHTS.exists():
        pytest.skip("no trained weights (make cache-verifier)")
    model = pairmodel.PairModel(minilm())
    threshold = model.threshold(0.02)
    assert 0.5 < threshold < 1.0
    same, other = model.scores(
        [
            ("How can I improve my English speaking?", "How do I get better at speaking English?"),
            ("How can I improve my English speaking?", "How can I improve my French speaking?"),
        ]
    )
    assert same >= threshold
    assert other < threshold
