"""One read of a text by the in-process embedding model (all-MiniLM-L6-v2), shared by the
rails that need it: the injection classifier reads each window's sentence embedding, the PII
entity tagger each word piece's hidden state after the second layer. When both rails are on,
the model runs once per text: the injection rail reads the whole model and keeps the pieces'
states for the tagger.

Texts are read in windows of at most 256 word pieces (the model's training length),
overlapping by at least 32, so that nothing past the 256th piece goes unread.

On CPU, with ``onnxruntime`` installed, the read runs on ONNX Runtime (:mod:`stackyard.onnxgraph`),
the same states and vectors as PyTorch to 0.000003, and the injection classifier's own upper
layers in 8 bits (:data:`QUANTIZE_UPPER`): all the input rails on 1,000 characters in 29 to 31
ms at the median against PyTorch's 52 to 59. Each read (shallow, or whole with given upper
layers) is exported the first time it is asked for, from the weights as they are then.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from stackyard import onnxgraph

log = logging.getLogger("stackyard.guardrails")

#: Word pieces per window at most, the two special tokens included.
WINDOW = 256
OVERLAP = 32
#: The layer after which each piece's hidden state is kept (0 is the embeddings, 6 the last):
#: the entity tagger's. The second layer tagged as well as the third or the last (held-out
#: word pieces: recall 0.980, precision 0.967; 0.983 and 0.971 for the third), for a third
#: of the model's cost when it runs alone.
PIECE_LAYER = 2
#: Off only to measure the rails on PyTorch.
ONNX = True
#: On ONNX Runtime, the injection classifier's own upper layers (a read with ``upper``) run
#: with 8-bit weights (seven bits used, exact on every CPU: :data:`stackyard.onnxgraph.EXACT_INT8`):
#: 24 ms instead of 37 for 1,000 characters, the classifier's
#: probabilities within 0.002 on average, and its threshold measured on this read
#: (``threshold_int8`` beside the head). Off only to measure it.
QUANTIZE_UPPER = True
#: On ONNX Runtime, the model's own layers that :func:`deeper` runs on from a read (the PII
#: sentence gate's) run in 8 bits too: 3.9 ms instead of 7.1 for 1,000 characters on one
#: core. The gate is trained on this read. Off only to measure it.
QUANTIZE_DEEPER = True


@dataclass(frozen=True, slots=True)
class Reading:
    offsets: list[tuple[int, int]]  # each word piece's characters
    states: Any  # each piece's hidden state after ``layer``, a tensor
    layer: int
    #: Each window's sentence embedding (the mean of the last layer, normalised), when the
    #: whole model ran; None after a shallow read.
    vectors: Any = None
    #: Each window's states after ``layer``, its special tokens included (a tensor, windows x
    #: pieces x width), and where each window starts among the pieces: what :func:`deeper`
    #: runs on.
    windows: Any = None
    starts: tuple[int, ...] = ()


def read(
    embedder: Any,
    text: str,
    layer: int = PIECE_LAYER,
    whole: bool = False,
    upper: Any = None,
) -> Reading:
    """Read ``text`` with ``embedder`` (a loaded sentence-transformers model): the pieces'
    states after ``layer`` (a piece in two windows gets the mean of both), and with ``whole``
    the windows' sentence embeddings. Without ``whole`` the layers after ``layer`` are not
    run; ``upper``: layers to run after ``layer`` in place of the model's own (the injection
    classifier's, :mod:`stackyard.guardrails.injection_layers`).

    The model runs in two parts, its first ``layer`` layers and then the rest, rather than
    with ``output_hidden_states``: transformers records hidden states with hooks on the layer
    modules, which the shallow model shares with the whole one, and the hooks of one then
    record into the other's list (measured: layer 1's states returned as layer 2's)."""
    import torch

    full = embedder[0].auto_model
    ids, offsets, starts, _, batch = windows(embedder, text)
    vectors = None
    graph = _graph(full, layer, whole, upper)
    if graph is not None:
        found, vectors = graph(batch.numpy())
        states = torch.from_numpy(found)
    else:
        with torch.inference_mode():
            # Every window has the same length: no padding, so no attention mask either.
            states = shallow(full, layer)(input_ids=batch).last_hidden_state
            if whole:
                vectors = sentence_vectors(states, _blocks(full, layer, upper)).numpy()
    return Reading(offsets, merged(states, starts, len(ids)), layer, vectors, states, tuple(starts))


def merged(states: Any, starts: list[int] | tuple[int, ...], count: int) -> Any:
    """Each of ``count`` word pieces' state from the windows' ``states`` (special tokens
    included): a piece in two windows gets the mean of both."""
    import torch

    if len(starts) == 1:
        return states[0, 1 : count + 1]
    size = states.shape[1] - 2
    pieces = torch.zeros((count, states.shape[-1]))
    seen = torch.zeros((count, 1))
    for row, start in enumerate(starts):
        pieces[start : start + size] += states[row, 1 : size + 1]
        seen[start : start + size] += 1
    return pieces / seen


def deeper(embedder: Any, reading: Reading, depth: int, blocks: Any = None) -> Any:
    """Each word piece's state after the model's first ``depth`` layers, run on from
    ``reading``'s windows: the layers it already ran are not run again (on ONNX Runtime where
    the read is, in 8 bits there unless :data:`QUANTIZE_DEEPER` is off). ``blocks``: layers
    to run in place of the model's own ``reading.layer`` to ``depth`` (the PII sentence
    gate's fine-tuned copy, :mod:`stackyard.guardrails.own_layers`)."""
    import torch

    full = embedder[0].auto_model
    if reading.windows is None or depth <= reading.layer:
        raise ValueError(f"a read to layer {reading.layer} has no layers to run on to {depth}")
    if blocks is None:
        blocks = list(full.encoder.layer)[reading.layer : depth]
    graph = _onward(full, blocks, QUANTIZE_DEEPER) if on_onnx(full) else None
    if graph is not None:
        states = torch.from_numpy(graph.run(None, {"states": reading.windows.numpy()})[0])
    else:
        with torch.inference_mode():
            states = run_blocks(reading.windows, blocks)
    return merged(states, reading.starts, len(reading.offsets))


def run_blocks(states: Any, blocks: Any) -> Any:
    """``states`` (windows x pieces x width) run through the transformer layers ``blocks``."""
    for block in blocks:
        out = block(states)
        states = out[0] if isinstance(out, tuple) else out
    return states


#: Exported layer runs, by the identity of the model and of the layers (each held in its
#: entry, so that neither identity can be reused while the entry lives).
_onwards: dict[tuple[int, tuple[int, ...], bool], tuple[Any, Any, Any]] = {}


def _onward(model: Any, blocks: Any, int8: bool) -> Any:
    """``blocks`` (layers of ``model``'s width) on ONNX Runtime (states to states), with
    8-bit weights where ``int8``, or None where they cannot be exported."""
    import torch

    key = (id(model), tuple(id(block) for block in blocks), int8)
    with _exporting:
        found = _onwards.get(key)
        if found is None:

            class Onward(torch.nn.Module):
                def __init__(self) -> None:
                    super().__init__()
                    self.blocks = torch.nn.ModuleList(list(blocks))

                def forward(self, states: Any) -> Any:
                    return run_blocks(states, self.blocks)

            pieces = {0: "rows", 1: "pieces"}
            try:
                exported = onnxgraph.export(
                    Onward(),
                    {"states": torch.zeros((1, 3, model.config.hidden_size))},
                    ["deeper"],
                    {"states": pieces, "deeper": pieces},
                )
                graph = onnxgraph.load(exported, int8=int8)
            except Exception as exc:  # a model the exporter cannot trace: PyTorch it is
                log.warning("the guardrails' deeper read stays on PyTorch: %s", exc)
                graph = None
            found = _onwards[key] = (model, list(blocks), graph)
    return found[2]


def windows(
    embedder: Any, text: str
) -> tuple[list[int], list[tuple[int, int]], list[int], int, Any]:
    """``text``'s word pieces, their characters, where each window starts, the windows' one
    length, and the windows as a batch of ids (each with its special tokens)."""
    import torch

    tokenizer = embedder.tokenizer
    encoded = tokenizer(
        text, add_special_tokens=False, return_offsets_mapping=True, truncation=False, verbose=False
    )
    ids: list[int] = encoded["input_ids"]
    offsets = [(int(a), int(b)) for a, b in encoded["offset_mapping"]]
    starts, size = window_starts(len(ids))
    batch = torch.tensor(
        [[tokenizer.cls_token_id, *ids[s : s + size], tokenizer.sep_token_id] for s in starts]
    )
    return ids, offsets, starts, size, batch


def sentence_vectors(states: Any, blocks: Any) -> Any:
    """Each window's sentence embedding (the mean of the last layer, normalised) from its
    states after the shallow layers, run through ``blocks`` (differentiable: training runs
    it too)."""
    import torch

    return torch.nn.functional.normalize(run_blocks(states, blocks).mean(1), dim=-1)


_graphs: dict[tuple[int, int, bool, int, bool], tuple[Any, Any]] = {}
_exporting = threading.RLock()  # an 8-bit read asks for the shallow one while exporting
Graph = Callable[[Any], tuple[Any, Any]]


def _blocks(model: Any, layer: int, upper: Any) -> Any:
    """The layers a whole read runs after ``layer``: ``upper``, or the model's own."""
    return list(model.encoder.layer)[layer:] if upper is None else upper


def on_onnx(model: Any) -> bool:
    """Whether reads with ``model`` run on ONNX Runtime."""
    return ONNX and onnxgraph.available() and model.device.type == "cpu"


def quantizes(embedder: Any, upper: Any) -> bool:
    """Whether a whole read with ``upper`` layers runs them in 8 bits."""
    return upper is not None and QUANTIZE_UPPER and on_onnx(embedder[0].auto_model)


def _graph(model: Any, layer: int, whole: bool, upper: Any) -> Graph | None:
    """This read on ONNX Runtime (ids to states and, when whole, vectors), or None where it
    stays on PyTorch: off, not installed, not on the CPU, or not exportable."""
    if not on_onnx(model):
        return None
    int8 = whole and upper is not None and QUANTIZE_UPPER
    key = (id(model), layer, whole, id(upper), int8)
    with _exporting:
        found = _graphs.get(key)
        if found is None:  # the modules are kept with it, so that no id is reused
            blocks = _blocks(model, layer, upper) if whole else None
            found = _graphs[key] = ((model, upper), _export(model, layer, blocks, int8))
    graph: Graph | None = found[1]
    return graph


def _export(model: Any, layer: int, blocks: Any, int8: bool) -> Graph | None:
    """The read as one graph, or (``int8``) as two: the shallow read in full precision, the
    very one the tagger's reads run (its states stay exact), then ``blocks`` in 8 bits."""
    import torch

    class Read(torch.nn.Module):
        def __init__(self, whole: bool) -> None:
            super().__init__()
            self.low = shallow(model, layer)
            self.blocks = torch.nn.ModuleList(blocks) if whole else None

        def forward(self, ids: Any) -> Any:
            states = self.low(input_ids=ids).last_hidden_state
            if self.blocks is None:
                return states
            return states, sentence_vectors(states, self.blocks)

    class Upper(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.blocks = torch.nn.ModuleList(blocks)

        def forward(self, states: Any) -> Any:
            return sentence_vectors(states, self.blocks)

    ids = {"input_ids": torch.tensor([[101, 7592, 102]])}
    pieces = {0: "rows", 1: "pieces"}
    try:
        if blocks is None:
            low = onnxgraph.session(
                Read(False), ids, ["states"], {"input_ids": pieces, "states": pieces}
            )
            return lambda batch: (low.run(None, {"input_ids": batch})[0], None)
        if int8:
            shallow_read = _graph(model, layer, False, None)  # the tagger's, not a second copy
            if shallow_read is None:
                return None
            graph = onnxgraph.export(
                Upper(),
                {"states": torch.zeros((1, 3, model.config.hidden_size))},
                ["vectors"],
                {"states": pieces, "vectors": {0: "rows"}},
            )
            top = onnxgraph.load(graph, int8=True)

            def two(batch: Any) -> tuple[Any, Any]:
                states = shallow_read(batch)[0]
                return states, top.run(None, {"states": states})[0]

            return two
        both = onnxgraph.session(
            Read(True),
            ids,
            ["states", "vectors"],
            {"input_ids": pieces, "states": pieces, "vectors": {0: "rows"}},
        )
        return lambda batch: tuple(both.run(None, {"input_ids": batch}))
    except Exception as exc:  # a model the exporter cannot trace: PyTorch it is
        log.warning("the guardrails' read stays on PyTorch: %s", exc)
        return None


_shallow: dict[tuple[int, int], Any] = {}


def shallow(model: Any, depth: int) -> Any:
    """The model with its first ``depth`` layers only (the same weights, not a copy)."""
    key = (id(model), depth)
    found = _shallow.get(key)
    if found is None:
        import copy

        import torch

        encoder = copy.copy(model.encoder)
        encoder._modules = {**model.encoder._modules}
        encoder.layer = torch.nn.ModuleList(list(model.encoder.layer)[:depth])
        found = copy.copy(model)
        found._modules = {**model._modules, "encoder": encoder}
        _shallow[key] = found
    return found


def window_starts(count: int) -> tuple[list[int], int]:
    """Where each window of word pieces starts, and the windows' one length: as few windows as
    hold ``count`` pieces with at least ``OVERLAP`` shared between neighbours, all of one
    length (no padding) and no longer than they need be (the model's cost is in the pieces it
    reads: 300 pieces are two windows of 166, not two of 254)."""
    size = WINDOW - 2
    if count <= size:
        return [0], count
    n = math.ceil((count - OVERLAP) / (size - OVERLAP))
    length = math.ceil((count + (n - 1) * OVERLAP) / n)
    return [round(i * (count - length) / (n - 1)) for i in range(n)], length
