"""Fine-tuned weights shipped as their difference from the base model's: each matrix's
difference in 8 bits with a scale per row, each vector's in 16 bits. A fine-tuned
all-MiniLM-L6-v2 layer so costs about a quarter of its float32 size, and the base model,
which ships in its own package, is not copied."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def quantize(parameters: Iterable[tuple[str, Any]], base: Mapping[str, Any]) -> dict[str, Any]:
    """``delta.NAME.q`` and ``delta.NAME.s`` for each matrix, ``delta.NAME`` for each vector."""
    import torch

    state = {}
    for name, parameter in parameters:
        delta = (parameter.detach() - base[name]).float()
        if delta.dim() == 2:
            scale = delta.abs().amax(dim=1, keepdim=True).clamp(min=1e-12) / 127
            state[f"delta.{name}.q"] = torch.round(delta / scale).to(torch.int8).contiguous()
            state[f"delta.{name}.s"] = scale.squeeze(1).contiguous()
        else:
            state[f"delta.{name}"] = delta.to(torch.float16).contiguous()
    return state


def apply(parameters: Iterable[tuple[str, Any]], tensors: Mapping[str, Any]) -> None:
    """Add the saved differences to the parameters, in place (under ``torch.no_grad``)."""
    for name, parameter in parameters:
        if f"delta.{name}.q" in tensors:
            q = tensors[f"delta.{name}.q"].float()
            parameter += q * tensors[f"delta.{name}.s"].float().unsqueeze(1)
        elif f"delta.{name}" in tensors:
            parameter += tensors[f"delta.{name}"].float()
