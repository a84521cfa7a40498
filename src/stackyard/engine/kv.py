"""Reshaping a batched key/value cache when sequences join or leave the running batch.

Rows are left-padded: every row's tokens end at the last column, and an attention mask marks
the padding. Joining pads the shorter cache on the left; leaving drops rows, then columns that
no remaining row uses.
"""

from __future__ import annotations

from typing import Any


def _layers(cache: Any) -> list[Any]:
    return list(cache.layers)


def merge(cache_a: Any, mask_a: Any, cache_b: Any, mask_b: Any) -> tuple[Any, Any]:
    """Stack two left-padded batches into ``cache_a`` (modified in place) and a joint mask."""
    import torch
    import torch.nn.functional as F

    length = max(mask_a.shape[1], mask_b.shape[1])
    pad_a = length - mask_a.shape[1]
    pad_b = length - mask_b.shape[1]
    for layer_a, layer_b in zip(_layers(cache_a), _layers(cache_b), strict=True):
        keys = [F.pad(layer_a.keys, (0, 0, pad_a, 0)), F.pad(layer_b.keys, (0, 0, pad_b, 0))]
        values = [F.pad(layer_a.values, (0, 0, pad_a, 0)), F.pad(layer_b.values, (0, 0, pad_b, 0))]
        layer_a.keys = torch.cat(keys, dim=0)
        layer_a.values = torch.cat(values, dim=0)
    mask = torch.cat([F.pad(mask_a, (pad_a, 0)), F.pad(mask_b, (pad_b, 0))], dim=0)
    return cache_a, mask


def keep_rows(cache: Any, mask: Any, rows: list[int]) -> tuple[Any, Any]:
    """Only ``rows`` remain; columns that every remaining row pads are dropped."""
    import torch

    index = torch.tensor(rows, dtype=torch.long, device=mask.device)
    mask = mask.index_select(0, index)
    used = mask.any(dim=0).nonzero()
    start = int(used[0].item()) if len(used) else mask.shape[1]
    mask = mask[:, start:]
    for layer in _layers(cache):
        layer.keys = layer.keys.index_select(0, index)[:, :, start:, :]
        layer.values = layer.values.index_select(0, index)[:, :, start:, :]
    return cache, mask
