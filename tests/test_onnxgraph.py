"""The 8-bit read: exact integer sums on every CPU (stackyard.onnxgraph.quantized). On a CPU
without VNNI (AVX2 only), full-range 8-bit weights fail the first test: ONNX Runtime's 16-bit
pair sums overflow there."""

from __future__ import annotations

from typing import Any

import pytest


def outlier_product() -> tuple[bytes, Any]:
    """A layer the size of MiniLM's feed-forward one and an input with one large channel, as
    a transformer's activations have: the case where 16-bit pair sums overflow."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    from stackyard import onnxgraph

    generator = torch.Generator().manual_seed(0)
    layer = torch.nn.Linear(384, 1536, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(1536, 384, generator=generator) * 0.05)
    x = torch.randn(64, 384, generator=generator)
    x[:, 5] *= 20
    graph = onnxgraph.export(layer, {"x": x}, ["y"], {"x": {0: "rows"}, "y": {0: "rows"}})
    return graph, x.numpy()


def test_the_8_bit_session_computes_the_quantized_graph_exactly() -> None:
    import numpy as np
    from onnx import load_from_string
    from onnx.reference import ReferenceEvaluator

    from stackyard import onnxgraph

    graph, x = outlier_product()
    int8 = onnxgraph.quantized(graph)
    got = onnxgraph.load(int8).run(None, {"x": x})[0]
    # ONNX's reference evaluator: the quantized graph's integer arithmetic, done exactly
    outputs: Any = ReferenceEvaluator(load_from_string(int8)).run(None, {"x": x})
    want = outputs[0]
    assert np.abs(got - want).max() < 1e-4 * np.abs(want).max()


def test_load_with_int8_quantizes_as_quantized_does() -> None:
    import numpy as np

    from stackyard import onnxgraph

    graph, x = outlier_product()
    got = onnxgraph.load(graph, int8=True).run(None, {"x": x})[0]
    want = onnxgraph.load(onnxgraph.quantized(graph)).run(None, {"x": x})[0]
    assert np.array_equal(got, want)
