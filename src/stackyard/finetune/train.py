"""Fine-tuning on the in-process model family: LoRA adapters with PEFT, or every weight
(``tuning: full``, for small models). CPU here, CUDA when present.

The loss is the mean over every trained token of the step (assistant turns only, all of them),
so packed and padded batches learn the same thing. The language-model head runs only on the
positions whose next token is trained: on chat data, most positions are prompt, and the head
(vocabulary times hidden size) is the largest matrix in a small model.

Deterministic for a seed: LoRA's initialisation, the order of examples in each epoch, and no
dropout by default. A checkpoint (adapter or weights, optimizer, schedule, step) is written
every ``checkpoint_every`` steps; ``run`` resumes from the latest one. A full run keeps only its
latest checkpoint (each holds the whole model and twice its size in optimizer state).
"""

from __future__ import annotations

import json
import math
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stackyard.finetune.data import Example
from stackyard.finetune.packing import Batch, collate
from stackyard.finetune.settings import Settings
from stackyard.finetune.tokens import IGNORE, ChatTokenizer, Tokenized

Event = Callable[[dict[str, Any]], None]
Control = Callable[[], str | None]  # None: go on; "cancel" or "pause": stop at the next step


class Stopped(Exception):
    def __init__(self, why: str, step: int) -> None:
        super().__init__(f"{why} at step {step}")
        self.why = why
        self.step = step


@dataclass
class Result:
    steps: int
    trained_tokens: int
    seconds: float
    train_loss: float
    adapter: Path  # the LoRA adapter's directory, or the whole model's for full tuning
    evaluation: dict[str, Any] = field(default_factory=dict)


def load_tokenizer(base: str) -> Any:
    import transformers

    from stackyard.engine.sources import resolve
    from stackyard.engine.unpacked import unpacked

    source = unpacked(resolve(base, "chat"))
    kwargs: dict[str, Any] = {"gguf_file": source.gguf_file} if source.gguf_file else {}
    return transformers.AutoTokenizer.from_pretrained(str(source.directory), **kwargs)


def load_base(settings: Settings) -> tuple[Any, Any, str]:
    """A fresh copy of the base model (never the serving engine's), its tokenizer, device."""
    import torch
    import transformers

    from stackyard.engine.loading import pick_device
    from stackyard.engine.sources import resolve
    from stackyard.engine.unpacked import unpacked

    source = unpacked(resolve(settings.base, "chat"))
    device = pick_device(settings.device)
    kwargs: dict[str, Any] = {"gguf_file": source.gguf_file} if source.gguf_file else {}
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(source.directory), **kwargs)
    model: Any = transformers.AutoModelForCausalLM.from_pretrained(
        str(source.directory), dtype=torch.float32, **kwargs
    )
    model.to(device)
    return model, tokenizer, device


class Trainer:
    def __init__(self, settings: Settings, out_dir: Path, on_event: Event | None = None) -> None:
        self.settings = settings
        self.out_dir = out_dir
        self.on_event = on_event or (lambda event: None)
        self.model: Any = None
        self.tokenizer: Any = None
        self.device = "cpu"

    # -- set-up ----------------------------------------------------------------------------

    @property
    def full(self) -> bool:
        return self.settings.tuning == "full"

    def load(self) -> ChatTokenizer:
        import torch
        from peft import LoraConfig, get_peft_model

        from stackyard.engine.unpacked import unmark_gguf

        s = self.settings
        base, self.tokenizer, self.device = load_base(s)
        if self.full:
            unmark_gguf(base)  # so that it saves as the plain model it is
            base.requires_grad_(True)
            self.model = base
            return ChatTokenizer(self.tokenizer, s.max_length)
        torch.manual_seed(s.seed)  # LoRA's initialisation
        config = LoraConfig(
            r=s.lora_r,
            lora_alpha=s.lora_alpha,
            lora_dropout=s.lora_dropout,
            target_modules=list(s.target_modules),
            task_type="CAUSAL_LM",
        )
        self.model = get_peft_model(base, config)
        return ChatTokenizer(self.tokenizer, s.max_length)

    @property
    def pad_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return int(pad if pad is not None else self.tokenizer.eos_token_id or 0)

    # -- the loss --------------------------------------------------------------------------

    def loss(self, batch: Batch) -> Any:
        """The summed cross-entropy over the trained tokens of ``batch``."""
        import torch.nn.functional as F

        device = self.device
        inner = self.model if self.full else self.model.get_base_model()
        hidden = inner.model(
            input_ids=batch.input_ids.to(device),
            position_ids=batch.position_ids.to(device),
            attention_mask=batch.attention_mask.to(device),
        ).last_hidden_state
        targets = batch.labels.to(device)[:, 1:]
        chosen = targets != IGNORE
        logits = inner.lm_head(hidden[:, :-1][chosen])
        return F.cross_entropy(logits.float(), targets[chosen], reduction="sum")

    def mean_loss(self, items: list[Tokenized], *, adapter: bool = True) -> float:
        import torch

        if not items:
            return float("nan")
        total, count = 0.0, 0
        with torch.no_grad(), self._weights(adapter):
            for i in range(0, len(items), self.settings.batch_size):
                batch = collate(
                    items[i : i + self.settings.batch_size],
                    self.settings.max_length,
                    pad_id=self.pad_id,
                    packed=self.settings.packing,
                )
                total += float(self.loss(batch))
                count += batch.trained
        return total / max(count, 1)

    def _weights(self, tuned: bool) -> Any:
        """A context with the base weights (``tuned=False``) or the tuned ones. A full run has
        only its current weights: the base is evaluated before training starts."""
        import contextlib

        if tuned or self.full:
            return contextlib.nullcontext()
        return self.model.disable_adapter()

    # -- training --------------------------------------------------------------------------

    def schedule(self, count: int) -> list[list[int]]:
        """Each step's example indices, for every epoch (the same for a seed)."""
        size = self.settings.batch_size
        steps: list[list[int]] = []
        for epoch in range(self.settings.n_epochs):
            order = list(range(count))
            random.Random(self.settings.seed * 1_000_003 + epoch).shuffle(order)
            steps.extend(order[i : i + size] for i in range(0, count, size))
        return steps

    def train(self, items: list[Tokenized], control: Control | None = None) -> Result:
        import torch

        s = self.settings
        plan = self.schedule(len(items))
        total = len(plan)
        params = [p for p in self.model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=s.learning_rate, weight_decay=0.0)
        warmup = int(total * s.warmup_ratio)

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            return max(0.0, (total - step) / max(1, total - warmup))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        start = self._resume(optimizer, scheduler)
        group = Group.current()
        self.model.train()
        started = time.monotonic()
        done_tokens = 0
        trained_tokens = 0
        losses: list[float] = []
        per_epoch = math.ceil(len(items) / s.batch_size)
        for step in range(start, total):
            if control is not None or group.size > 1:
                why = control() if control is not None and group.rank == 0 else None
                why = group.agree(why)  # every worker stops at the same step
                if why:
                    if group.rank == 0:
                        self._checkpoint(step, optimizer, scheduler)
                    raise Stopped(why, step)
            chosen = [items[i] for i in plan[step]]
            step_trained = sum(item.trained for item in chosen)
            mine = chosen[group.rank :: group.size]  # data parallel: a share of the step each
            loss = torch.zeros((), device=self.device)
            if mine:
                batch = collate(mine, s.max_length, pad_id=self.pad_id, packed=s.packing)
                loss = self.loss(batch) / max(step_trained, 1)
                loss.backward()
            loss = group.sum(params, loss)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(float(loss.detach()))
            done_tokens += sum(len(item) for item in chosen)
            trained_tokens += step_trained
            elapsed = time.monotonic() - started
            rate = done_tokens / elapsed if elapsed else 0.0
            left = (total - step - 1) * elapsed / (step + 1 - start)
            self.on_event(
                {
                    "type": "metrics",
                    "step": step + 1,
                    "total_steps": total,
                    "epoch": step // per_epoch + 1,
                    "train_loss": round(float(loss.detach()), 5),
                    "learning_rate": scheduler.get_last_lr()[0],
                    "tokens_per_second": round(rate, 1),
                    "eta_seconds": round(left, 1),
                }
            )
            if (step + 1) % s.checkpoint_every == 0 and step + 1 < total and group.rank == 0:
                self._checkpoint(step + 1, optimizer, scheduler)
        self.model.eval()
        adapter = self.out_dir / ("model" if self.full else "adapter")
        if group.rank == 0:
            self._save(adapter)
        tail = losses[-max(1, len(losses) // 10) :] if losses else [float("nan")]
        return Result(
            steps=total,
            trained_tokens=trained_tokens,
            seconds=time.monotonic() - started,
            train_loss=sum(tail) / len(tail),
            adapter=adapter,
        )

    # -- checkpoints -----------------------------------------------------------------------

    def _checkpoint(self, step: int, optimizer: Any, scheduler: Any) -> None:
        import torch

        folder = self.out_dir / "checkpoints" / f"step-{step:06d}"
        partial = folder.with_name(folder.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        self._save(partial)
        torch.save(
            {
                "step": step,
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
            },
            partial / "state.pt",
        )
        shutil.rmtree(folder, ignore_errors=True)
        partial.rename(folder)  # a checkpoint is complete or absent
        if self.full:  # each is the whole model: keep the latest only
            for older in self.checkpoints()[:-1]:
                shutil.rmtree(older, ignore_errors=True)
        self.on_event({"type": "checkpoint", "step": step, "path": str(folder)})

    def _save(self, folder: Path) -> None:
        """The adapter (LoRA), or a model directory the gateway can serve (full)."""
        if self.full:
            self.model.save_pretrained(str(folder))
            self.tokenizer.save_pretrained(str(folder))
        else:
            self.model.save_pretrained(str(folder), save_embedding_layers=False)

    def checkpoints(self) -> list[Path]:
        root = self.out_dir / "checkpoints"
        if not root.exists():
            return []
        return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.endswith(".partial"))

    def load_weights(self, folder: Path) -> None:
        """Take the tuned weights in ``folder`` (a checkpoint, or a run's result)."""
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        if self.full:
            weights = load_file(str(folder / "model.safetensors"), device=self.device)
            _, unexpected = self.model.load_state_dict(weights, strict=False)
            if unexpected:
                raise ValueError(f"{folder}: weights this model does not have: {unexpected[:3]}")
            self.model.tie_weights()
        else:
            weights = load_file(str(folder / "adapter_model.safetensors"), device=self.device)
            set_peft_model_state_dict(self.model, weights)

    def _resume(self, optimizer: Any, scheduler: Any) -> int:
        import torch

        found = self.checkpoints()
        if not found:
            return 0
        latest = found[-1]
        self.load_weights(latest)
        state = torch.load(latest / "state.pt", map_location=self.device, weights_only=True)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        self.on_event({"type": "resumed", "step": state["step"], "path": str(latest)})
        return int(state["step"])

    # -- evaluation ------------------------------------------------------------------------

    def answer(self, example: Example, *, adapter: bool) -> str:
        import torch

        messages = [{"role": t.role, "content": t.content} for t in example.prompt_turns]
        text = self.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True
        )
        ids = self.tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
        stops = [
            i
            for i in (
                self.tokenizer.eos_token_id,
                self.tokenizer.convert_tokens_to_ids("<|im_end|>"),
            )
            if isinstance(i, int) and i >= 0
        ]
        with torch.no_grad(), self._weights(adapter):
            out = self.model.generate(
                input_ids=ids.to(self.device),
                attention_mask=torch.ones_like(ids).to(self.device),
                max_new_tokens=self.settings.eval_max_new_tokens,
                do_sample=False,
                eos_token_id=stops or None,
                pad_token_id=self.pad_id,
            )
        answer: str = self.tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)
        return answer.strip()

    def evaluate(
        self,
        val: list[Tokenized],
        examples: list[Example],
        base: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Held-out loss and exact match and F1 on the answers, base and tuned side by side.
        ``base``: the base model's side, measured before training (a full run must)."""
        if base is None:
            if self.full:
                raise ValueError("full tuning: evaluate the base model before training")
            base = self.scores(val, examples, tuned=False)
        report = {"examples": len(examples), "base": base}
        report["tuned"] = self.scores(val, examples, tuned=True)
        self.on_event({"type": "evaluation", **report})
        return report

    def scores(
        self, val: list[Tokenized], examples: list[Example], *, tuned: bool
    ) -> dict[str, Any]:
        """One side of the evaluation: the current weights' (tuned) or the base's."""
        from stackyard.evals.scorers.text import token_f1

        def norm(text: str) -> str:
            return " ".join(text.lower().split())

        answers = [self.answer(e, adapter=tuned) for e in examples]
        pairs = list(zip(answers, examples, strict=True))
        return {
            "validation_loss": round(self.mean_loss(val, adapter=tuned), 5),
            "exact_match": _mean([float(norm(a) == norm(e.answer)) for a, e in pairs]),
            "f1": _mean([token_f1(a, e.answer) for a, e in pairs]),
            "samples": [{"expected": e.answer, "answer": a} for a, e in pairs[:3]],
        }


@dataclass(frozen=True)
class Group:
    """The workers training one model together (data parallel, on a Ray cluster): each takes
    every ``size``-th example of a step; gradients and losses are summed across them. Alone
    (``size`` 1), nothing is exchanged and a run is exactly a local one."""

    rank: int = 0
    size: int = 1

    @classmethod
    def current(cls) -> Group:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return cls(dist.get_rank(), dist.get_world_size())
        return cls()

    def sum(self, params: list[Any], loss: Any) -> Any:
        """Sum the step's gradients (each worker's loss is its share of the step's) and loss."""
        import torch
        import torch.distributed as dist

        if self.size == 1:
            return loss
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            dist.all_reduce(p.grad)
        total = loss.detach().clone()
        dist.all_reduce(total)
        return total

    def agree(self, why: str | None) -> str | None:
        """Rank 0's decision (stop or go on), for every worker."""
        import torch.distributed as dist

        if self.size == 1:
            return why
        said = [why]
        dist.broadcast_object_list(said, src=0)
        return said[0]


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def write_result(out_dir: Path, result: Result) -> None:
    data = {
        "steps": result.steps,
        "trained_tokens": result.trained_tokens,
        "seconds": round(result.seconds, 2),
        "train_loss": round(result.train_loss, 5),
        "adapter": str(result.adapter),
        "evaluation": result.evaluation,
    }
    (out_dir / "result.json").write_text(json.dumps(data, indent=2))
