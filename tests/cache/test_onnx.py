"""The semantic tier's models on ONNX Runtime give PyTorch's numbers, whatever the batch, and
fall back to PyTorch when it is off."""

from __future__ import annotations

import pytest

from stackyard.cache import onnx
from stackyard.cache import pairs as pairmodel
from tests.conftest import need_module, unavailable

need_module("torch", module=True)
need_module("transformers", module=True)
if not onnx.available():
    unavailable("onnxruntime and onnx are not installed", module=True)
if not pairmodel.WEIGHTS.exists():
    unavailable("no trained weights (make cache-verifier)", module=True)

PAIRS = [
    ("How can I improve my English speaking?", "How do I get better at speaking English?"),
    ("How old is the moon?", "What is the age of the moon?"),
    ("Why?", "What are the best ways to learn to play the guitar as an adult in a big city?"),
    ("Is 7 a prime number?", "Is 9 a prime number?"),
    ("x " * 200, "y " * 200),  # truncated to the maximum length
]


@pytest.fixture(scope="module")
def models() -> tuple[pairmodel.PairModel, pairmodel.PairModel]:
    from stackyard.engine.sources import ModelSourceError, resolve

    try:
        directory = resolve("all-minilm-l6-v2", "embeddings").directory
    except ModelSourceError as exc:
        unavailable(str(exc))
    fast = pairmodel.PairModel(directory)
    onnx.ENABLED = False
    try:
        plain = pairmodel.PairModel(directory)
    finally:
        onnx.ENABLED = True
    return fast, plain


@pytest.mark.slow
def test_onnx_scores_as_pytorch_in_any_batch(
    models: tuple[pairmodel.PairModel, pairmodel.PairModel],
) -> None:
    fast, plain = models
    assert (fast.runtime, plain.runtime) == ("onnxruntime", "torch")
    expected = plain.scores(PAIRS, symmetric=False)
    assert fast.scores(PAIRS, symmetric=False) == pytest.approx(expected, abs=1e-5)
    alone = [fast.scores([pair], symmetric=False)[0] for pair in PAIRS]
    assert alone == pytest.approx(expected, abs=1e-5)  # padding changes nothing
    assert fast.scores(PAIRS) == pytest.approx(plain.scores(PAIRS), abs=1e-5)
    assert len({round(score, 3) for score in expected}) == len(PAIRS)  # the pairs tell apart


@pytest.mark.slow
def test_the_embedder_on_onnx_gives_sentence_transformers_vectors() -> None:
    from stackyard.engine.loading import load_embedder
    from stackyard.engine.sources import ModelSourceError, resolve

    try:
        model = load_embedder(resolve("all-minilm-l6-v2", "embeddings"), "cpu")
    except ModelSourceError as exc:
        unavailable(str(exc))
    fast = onnx.embedder(model)
    assert fast is not None
    texts = [a for a, _ in PAIRS] + ["", "one"]
    expected = model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    found = fast.encode(texts, normalize_embeddings=True, show_progress_bar=False)
    assert found.shape == expected.shape
    assert abs(found - expected).max() < 1e-5
    alone = [fast.encode([t], normalize_embeddings=True)[0] for t in texts]
    assert max(abs(a - e).max() for a, e in zip(alone, expected, strict=True)) < 1e-5
    unnormalized = fast.encode(texts[:1])
    assert abs(float((unnormalized**2).sum()) - 1.0) > 1e-3  # mean-pooled, not yet scaled
    onnx.ENABLED = False
    try:
        assert onnx.embedder(model) is None
    finally:
        onnx.ENABLED = True


def test_an_embedder_that_is_not_mean_pooled_stays_on_pytorch() -> None:
    class Pooling:
        def get_config_dict(self) -> dict[str, str]:
            return {"pooling_mode": "cls"}

    assert onnx.embedder([object(), Pooling()]) is None


@pytest.mark.slow
def test_a_classifier_that_fails_to_export_stays_on_pytorch(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from stackyard.engine.sources import ModelSourceError, resolve

    try:
        directory = resolve("all-minilm-l6-v2", "embeddings").directory
    except ModelSourceError as exc:
        unavailable(str(exc))

    def fails(*_: object) -> None:
        raise RuntimeError("cannot trace this")

    monkeypatch.setattr(onnx, "runner", fails)
    model = pairmodel.PairModel(directory)
    assert model.runtime == "torch"
    assert "stays on PyTorch: cannot trace this" in caplog.text
    assert 0.0 <= model.scores(PAIRS[:1])[0] <= 1.0
