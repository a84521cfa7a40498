"""The semantic tier's query embedder with its linear layers in 8 bits on CPU (PyTorch's
dynamic quantization: int8 weights, activations scaled per batch), where ONNX Runtime is not
installed (:mod:`stackyard.cache.onnx`, faster in full precision). On two cores it halves the
embedding of a lookup's question (16 to 7 ms at the median). Only the embedder: the pair
classifier in 8 bits moved its scores enough (0.04 on average) to break its calibration, whose
few highest-scoring held-out pairs decide the thresholds of small error budgets."""

from __future__ import annotations

import warnings
from typing import Any


def int8(module: Any, device: str) -> Any:
    """``module`` with its ``Linear`` layers in 8 bits (a copy), on CPU; as it is elsewhere,
    and as it is where PyTorch no longer has dynamic quantization (it is deprecated, in favour
    of the separate ``torchao`` package)."""
    if device != "cpu":
        return module
    import torch

    quantize: Any = getattr(getattr(torch.ao, "quantization", None), "quantize_dynamic", None)
    if quantize is None:
        return module
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its deprecation warnings, once per load
        return quantize(module, {torch.nn.Linear}, dtype=torch.qint8)
