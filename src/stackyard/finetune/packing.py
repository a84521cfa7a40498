"""Batches of tokenized examples as tensors: packed without padding between examples, or
padded (for comparison).

Packing puts several examples in one row, each with its own positions (restarting at 0) and a
block-diagonal causal attention mask, so that no example attends to another: the logits of a
packed example equal its logits alone. Rows hold at most ``max_length`` tokens (first fit, the
longest examples first), so attention stays within one example's bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stackyard.finetune.tokens import IGNORE, Tokenized


@dataclass
class Batch:
    input_ids: Any  # (rows, length) long
    labels: Any  # (rows, length) long, IGNORE where nothing is learnt
    position_ids: Any  # (rows, length) long
    attention_mask: Any  # (rows, 1, length, length) bool, True: may attend
    tokens: int  # real (not padding) tokens
    trained: int  # tokens in the loss


def rows(items: list[Tokenized], max_length: int) -> list[list[Tokenized]]:
    """First-fit decreasing: each row's examples fit in ``max_length`` tokens together."""
    packed: list[list[Tokenized]] = []
    room: list[int] = []
    for item in sorted(items, key=len, reverse=True):
        for i, free in enumerate(room):
            if len(item) <= free:
                packed[i].append(item)
                room[i] -= len(item)
                break
        else:
            packed.append([item])
            room.append(max_length - len(item))
    return packed


def collate(items: list[Tokenized], max_length: int, *, pad_id: int, packed: bool = True) -> Batch:
    import torch

    groups = rows(items, max_length) if packed else [[item] for item in items]
    length = max(sum(len(i) for i in group) for group in groups)
    count = len(groups)
    input_ids = torch.full((count, length), pad_id, dtype=torch.long)
    labels = torch.full((count, length), IGNORE, dtype=torch.long)
    position_ids = torch.zeros((count, length), dtype=torch.long)
    mask = torch.zeros((count, 1, length, length), dtype=torch.bool)
    for r, group in enumerate(groups):
        at = 0
        for item in group:
            n = len(item)
            input_ids[r, at : at + n] = torch.tensor(item.input_ids)
            labels[r, at : at + n] = torch.tensor(item.labels)
            position_ids[r, at : at + n] = torch.arange(n)
            mask[r, 0, at : at + n, at : at + n] = torch.tril(torch.ones(n, n, dtype=torch.bool))
            at += n
        if at < length:  # padding attends to itself only (no NaN rows), and is never learnt
            pads = torch.arange(at, length)
            mask[r, 0, pads, pads] = True
    return Batch(
        input_ids,
        labels,
        position_ids,
        mask,
        tokens=sum(len(i) for i in items),
        trained=sum(i.trained for i in items),
    )
