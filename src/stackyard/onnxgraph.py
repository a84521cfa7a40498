"""Small PyTorch models run by ONNX Runtime on CPU, in full precision: the semantic cache's two
models (:mod:`stackyard.cache.onnx`) and the guardrails' read of a text
(:mod:`stackyard.guardrails.reading`).

PyTorch runs these models one operator at a time; ONNX Runtime fuses the layer norms, GELUs
and attention of the same graph and spends less per call, with the same numbers to about
0.000003. A graph is exported from the loaded module when it is first needed (a second or two;
nothing is written to disk), so it holds the weights as they were then.

Without ``onnxruntime`` and ``onnx`` (both in the ``local`` extra) callers stay on PyTorch.
"""

from __future__ import annotations

import io
import logging
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

#: Quantized weights in seven bits, so that 8-bit matrix products are exact on every CPU
#: (:func:`quantized`). Off only to measure the difference.
EXACT_INT8 = True


def available() -> bool:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


class _Drop(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return False


def export(
    module: Any,
    sample: Mapping[str, Any],
    outputs: Sequence[str],
    axes: Mapping[str, Mapping[int, str]],
) -> bytes:
    """``module(*sample.values())`` as an ONNX graph, exported with ``sample`` (tensors by
    input name); ``axes``: each input's and output's dimensions of any size."""
    import torch

    graph: Any = io.BytesIO()  # the legacy exporter writes to a buffer too
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # the exporter's own deprecation and tracing warnings
        torch.onnx.export(
            module.eval(),
            tuple(sample.values()),
            graph,
            input_names=list(sample),
            output_names=list(outputs),
            dynamic_axes={name: dict(dims) for name, dims in axes.items()},
            opset_version=17,
            dynamo=False,
        )
    return bytes(graph.getvalue())


def load(graph: bytes, int8: bool = False) -> Any:
    """An ONNX Runtime session on CPU for ``graph``; ``int8``: its matrix products with 8-bit
    weights, a scale per output channel, and activations quantized as they come (ONNX
    Runtime's dynamic quantization, :func:`quantized`)."""
    import onnxruntime

    if int8:
        graph = quantized(graph)
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.inter_op_num_threads = 1
    # Its threads would otherwise spin after each call, taking the cores from whatever runs
    # next on them (the event loop, the backend).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(graph, options, providers=["CPUExecutionProvider"])


def quantized(graph: bytes) -> bytes:
    """``graph`` with its matrix products' weights in 8 bits, by ONNX Runtime's dynamic
    quantization.

    The weights use seven of their eight bits (:data:`EXACT_INT8`): on a CPU without VNNI
    (AVX2 only, as some of this project's machines are), ONNX Runtime adds pairs of 8-bit
    products in 16 bits, which overflow and are clipped with full-range weights. A product
    then came out 0.63 off on a scale of 8.9 where the exact sum differs by 0.000001
    (``tests/test_onnxgraph.py``), and the rails' scores and thresholds depended on the
    machine that measured them. With seven bits no pair can overflow, so every CPU computes
    the same exact sums."""
    import tempfile
    from pathlib import Path

    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as directory:
        plain, int8 = Path(directory, "plain.onnx"), Path(directory, "int8.onnx")
        plain.write_bytes(graph)
        root = logging.getLogger()
        advice = _Drop()  # its advice to pre-process first, logged on the root logger
        root.addFilter(advice)
        try:
            quantize_dynamic(
                plain,
                int8,
                weight_type=QuantType.QInt8,
                per_channel=True,
                reduce_range=EXACT_INT8,
            )
        finally:
            root.removeFilter(advice)
        return int8.read_bytes()


def session(
    module: Any,
    sample: Mapping[str, Any],
    outputs: Sequence[str],
    axes: Mapping[str, Mapping[int, str]],
) -> Any:
    """An ONNX Runtime session for ``module``, exported as :func:`export` does."""
    return load(export(module, sample, outputs, axes))
