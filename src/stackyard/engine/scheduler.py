"""Continuous batching for one causal language model, in a thread of its own.

Between two decode steps the scheduler admits waiting sequences: it prefills them together
(left-padded), then joins their key/value cache to the running batch's. Every step decodes one
token for every running sequence in a single forward pass; a sequence leaves the batch as soon
as it finishes (end of sequence, ``max_tokens``, a stop string) or its client goes away.
Tokens reach the asyncio side as they are decoded. torch releases the GIL while it computes,
so the server's event loop stays responsive.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

from stackyard.engine import kv
from stackyard.engine.grammar import Constraint, GrammarError
from stackyard.engine.sampling import (
    SamplingParams,
    TextTail,
    TokenLogprob,
    logprobs,
    sample,
)

log = logging.getLogger("stackyard.engine")


class QueueFull(Exception):
    """More sequences are waiting than the engine accepts."""


class EngineStopped(Exception):
    """The engine was stopped: it takes no more sequences."""


@dataclass
class Delta:
    """What one sequence produced since the last delta; the last one has a finish reason."""

    text: str
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None
    #: The log probabilities of the tokens since the last delta (when asked for).
    logprobs: list[TokenLogprob] = field(default_factory=list)


@dataclass(eq=False)
class Sequence:
    prompt: list[int]
    params: SamplingParams
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[Delta]
    output: list[int] = field(default_factory=list)
    cancelled: bool = False
    generator: Any = None
    tail: TextTail | None = None
    adapter: str | None = None
    #: The grammar its tokens follow, if any.
    constraint: Constraint | None = None
    pending: list[TokenLogprob] = field(default_factory=list)

    def emit(self, delta: Delta) -> None:
        self.loop.call_soon_threadsafe(self.queue.put_nowait, delta)


class Engine:
    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        device: str = "cpu",
        max_batch: int = 16,
        max_queue: int = 64,
        context_length: int | None = None,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.device = device
        self.max_batch = max_batch
        self.max_queue = max_queue
        self.context_length = context_length or int(
            getattr(model.config, "max_position_embeddings", 2048)
        )
        eos = model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if tokenizer.eos_token_id is not None:
            eos_ids.add(tokenizer.eos_token_id)
        self.eos_ids = eos_ids
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self._waiting: collections.deque[Sequence] = collections.deque()
        self._wake = threading.Condition()
        self._running: list[Sequence] = []
        self._cache: Any = None
        self._mask: Any = None
        self._last: list[int] = []
        self._positions: list[int] = []
        self._stopped = False
        self.adapters: set[str] = set()
        self._grammar_tokenizer: Any = None
        self._grammar_lock = threading.Lock()
        self._model_lock = threading.Lock()  # held by a step; adapters load between steps
        self._thread = threading.Thread(target=self._loop, name="stackyard-engine", daemon=True)
        self._thread.start()

    # -- the asyncio side -------------------------------------------------------------------

    def add_adapter(self, name: str, path: str) -> None:
        """Serve a PEFT LoRA adapter from this engine's base weights, as ``name``. Sequences
        for different adapters (and for the base) share a batch."""
        from peft import PeftModel

        with self._model_lock:
            if name in self.adapters:
                return
            if isinstance(self.model, PeftModel):
                self.model.load_adapter(path, adapter_name=name)
            else:
                self.model = PeftModel.from_pretrained(self.model, path, adapter_name=name)
            self.model.eval()
            self.adapters.add(name)

    @property
    def grammar_tokenizer(self) -> Any:
        """llguidance's view of the tokenizer, made on first use (about a second)."""
        from stackyard.engine import grammar

        with self._grammar_lock:
            if self._grammar_tokenizer is None:
                vocab = int(self.model.config.vocab_size)
                self._grammar_tokenizer = grammar.tokenizer_for(self.tokenizer, vocab)
            return self._grammar_tokenizer

    def token_bytes(self, token: int) -> bytes:
        """A token's own bytes (part of a character, for some)."""
        return bytes(self.grammar_tokenizer.decode_bytes([token]))

    async def constraint(self, grammar: str) -> Constraint:
        """A matcher for ``grammar`` (compiled in a thread). Raises GrammarError."""
        return await asyncio.to_thread(lambda: Constraint(self.grammar_tokenizer, grammar))

    async def generate(
        self,
        prompt: list[int],
        params: SamplingParams,
        *,
        adapter: str | None = None,
        constraint: Constraint | None = None,
    ) -> AsyncGenerator[Delta, None]:
        """Deltas of text as they are decoded; the last carries the finish reason and usage.
        With a ``constraint`` (from :meth:`constraint`, one per sequence) the output follows
        its grammar and ends when the grammar is complete."""
        import torch

        if adapter is not None and adapter not in self.adapters:
            raise KeyError(f"no adapter '{adapter}' is loaded")
        loop = asyncio.get_running_loop()
        sequence = Sequence(
            prompt,
            params,
            loop,
            asyncio.Queue(),
            tail=TextTail(params.stop),
            adapter=adapter,
            constraint=constraint,
        )
        if params.seed is not None:
            sequence.generator = torch.Generator(device=self.device).manual_seed(params.seed)
        with self._wake:
            if self._stopped:
                raise EngineStopped("the local engine has stopped")
            if len(self._waiting) >= self.max_queue:
                raise QueueFull(f"{len(self._waiting)} requests are already waiting")
            self._waiting.append(sequence)
            self._wake.notify()
        try:
            while True:
                delta = await sequence.queue.get()
                yield delta
                if delta.finish_reason is not None or delta.error is not None:
                    return
        finally:
            sequence.cancelled = True  # the client left, or the stream ended: stop decoding

    def stop(self) -> None:
        with self._wake:
            self._stopped = True
            self._wake.notify()

    @property
    def load(self) -> tuple[int, int]:
        """(running, waiting) sequences."""
        return len(self._running), len(self._waiting)

    # -- the engine thread ------------------------------------------------------------------

    def _loop(self) -> None:
        import torch

        with torch.inference_mode():
            while True:
                with self._wake:
                    while not self._stopped and not self._waiting and not self._running:
                        self._wake.wait()
                    if self._stopped:  # nobody is left waiting for a delta that never comes
                        for sequence in [*self._running, *self._waiting]:
                            sequence.emit(Delta("", error="the local engine stopped"))
                        self._running, self._cache, self._mask = [], None, None
                        self._waiting.clear()
                        return
                    room = self.max_batch - len(self._running)
                    admitted = [
                        self._waiting.popleft() for _ in range(min(room, len(self._waiting)))
                    ]
                try:
                    admitted = [s for s in admitted if not s.cancelled]
                    with self._model_lock:
                        if admitted:
                            self._prefill(admitted)
                        if self._running:
                            self._step()
                except Exception as exc:  # a bug or an out-of-memory: fail the batch, go on
                    log.exception("engine step failed")
                    for sequence in [*self._running, *admitted]:
                        sequence.emit(Delta("", error=f"the local engine failed: {exc}"))
                    self._running, self._cache, self._mask = [], None, None
                    self._last, self._positions = [], []

    def _forward(
        self, ids: Any, mask: Any, positions: Any, cache: Any, rows: list[Sequence]
    ) -> Any:
        extra: dict[str, Any] = {}
        if self.adapters:  # a PEFT model: each row names its adapter, or the base
            extra["adapter_names"] = [s.adapter or "__base__" for s in rows]
        out = self.model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            cache=cache,
            use_cache=True,
            **extra,
        )
        return out.logits[:, -1, :]

    def _prefill(self, sequences: list[Sequence]) -> None:
        import torch
        from transformers import DynamicCache

        length = max(len(s.prompt) for s in sequences)
        ids = torch.full((len(sequences), length), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(sequences), length), dtype=torch.long)
        for row, sequence in enumerate(sequences):
            ids[row, length - len(sequence.prompt) :] = torch.tensor(sequence.prompt)
            mask[row, length - len(sequence.prompt) :] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
        cache = DynamicCache()
        logits = self._forward(ids, mask, positions, cache, sequences)
        tokens, scores = self._sample(logits, sequences)
        if self._running:
            self._cache, self._mask = kv.merge(self._cache, self._mask, cache, mask)
        else:
            self._cache, self._mask = cache, mask
        self._running.extend(sequences)
        self._last.extend(tokens)
        self._positions.extend(len(s.prompt) for s in sequences)
        self._accept(tokens, scores, first_row=len(self._running) - len(sequences))

    def _step(self) -> None:
        import torch

        ids = torch.tensor(self._last, dtype=torch.long, device=self.device)[:, None]
        ones = torch.ones((len(self._running), 1), dtype=torch.long, device=self.device)
        self._mask = torch.cat([self._mask, ones], dim=1)
        positions = torch.tensor(self._positions, dtype=torch.long, device=self.device)[:, None]
        logits = self._forward(ids, self._mask, positions, self._cache, self._running)
        tokens, scores = self._sample(logits, self._running)
        self._positions = [p + 1 for p in self._positions]
        self._last = tokens
        self._accept(tokens, scores, first_row=0)

    def _sample(
        self, logits: Any, rows: list[Sequence]
    ) -> tuple[list[int], list[TokenLogprob | None] | None]:
        """One token per row; grammars mask their rows first. Rows without a grammar or
        log probabilities cost nothing more than sampling."""
        for row, sequence in enumerate(rows):
            if sequence.constraint is not None:
                sequence.constraint.mask(logits[row])
        params = [s.params for s in rows]
        tokens = sample(logits, params, [s.generator for s in rows])
        if all(p.logprobs is None for p in params):
            return tokens, None
        return tokens, logprobs(logits, params, tokens)

    def _accept(
        self, tokens: list[int], scores: list[TokenLogprob | None] | None, first_row: int
    ) -> None:
        """Record each row's new token, emit text, and drop finished rows."""
        finished: set[int] = set()
        for offset, token in enumerate(tokens):
            row = first_row + offset
            sequence = self._running[row]
            if sequence.cancelled:
                finished.add(row)
                continue
            sequence.output.append(token)
            reason = None
            if token in self.eos_ids and not sequence.params.ignore_eos:
                reason = "stop"
            elif scores is not None and (score := scores[offset]) is not None:
                sequence.pending.append(score)
            if sequence.constraint is not None:
                try:
                    if sequence.constraint.accept(token):
                        reason = "stop"  # the grammar is complete
                except GrammarError as exc:
                    finished.add(row)
                    sequence.emit(Delta("", error=f"constrained decoding failed: {exc}"))
                    continue
            assert sequence.tail is not None
            visible = [t for t in sequence.output if t not in self.eos_ids]
            text = self.tokenizer.decode(visible, skip_special_tokens=True)
            delta, stopped = sequence.tail.update(text)
            if stopped:
                reason = "stop"
            elif reason is None and (
                len(sequence.output) >= sequence.params.max_tokens
                or len(sequence.prompt) + len(sequence.output) >= self.context_length
            ):
                reason = "length"
            if reason is not None:
                delta += sequence.tail.flush() if not stopped else ""
                finished.add(row)
                done = Delta(delta, reason, len(sequence.prompt), len(sequence.output))
                done.logprobs, sequence.pending = sequence.pending, []
                sequence.emit(done)
            elif delta:
                sequence.emit(Delta(delta, logprobs=sequence.pending))
                sequence.pending = []
        if finished:
            keep = [r for r in range(len(self._running)) if r not in finished]
            self._running = [self._running[r] for r in keep]
            self._last = [self._last[r] for r in keep]
            self._positions = [self._positions[r] for r in keep]
            if keep:
                self._cache, self._mask = kv.keep_rows(self._cache, self._mask, keep)
            else:
                self._cache, self._mask = None, None
