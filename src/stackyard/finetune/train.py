"""LoRA training with PEFT on the in-process model family: CPU here, CUDA when present.

The loss is the mean over every trained token of the step (assistant turns only, all of them),
so packed and padded batches learn the same thing. The language-model head runs only on the
positions whose next token is trained: on chat data, most positions are prompt, and the head
(vocabulary times hidden size) is the largest matrix in a small model.

Deterministic for a seed: LoRA's initialisation, the order of examples in each epoch, and no
dropout by default. A checkpoint (adapter, optimizer, schedule, step) is written every
``checkpoint_every`` steps; ``run`` resumes from the latest one.
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
    adapter: Path
    evaluation: dict[str, Any] = field(default_factory=dict)


def load_tokenizer(base: str) -> Any:
    import transformers

    from stackyard.engine.sources import resolve

    source = resolve(base, "chat")
    kwargs: dict[str, Any] = {"gguf_file": source.gguf_file} if source.gguf_file else {}
    return transformers.AutoTokenizer.from_pretrained(str(source.directory), **kwargs)


def load_base(settings: Settings) -> tuple[Any, Any, str]:
    """A fresh copy of the base model (never the serving engine's), its tokenizer, device."""
    import torch
    import transformers

    from stackyard.engine.loading import pick_device
    from stackyard.engine.sources import resolve

    source = resolve(settings.base, "chat")
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

    def load(self) -> ChatTokenizer:
        import torch
        from peft import LoraConfig, get_peft_model

        s = self.settings
        base, self.tokenizer, self.device = load_base(s)
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
        inner = self.model.get_base_model()
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
        import contextlib

        import torch

        if not items:
            return float("nan")
        total, count = 0.0, 0
        context = contextlib.nullcontext() if adapter else self.model.disable_adapter()
        with torch.no_grad(), context:
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
        self.model.train()
        started = time.monotonic()
        done_tokens = 0
        trained_tokens = 0
        losses: list[float] = []
        per_epoch = math.ceil(len(items) / s.batch_size)
        for step in range(start, total):
            if control is not None:
                why = control()
                if why:
                    self._checkpoint(step, optimizer, scheduler)
                    raise Stopped(why, step)
            batch = collate(
                [items[i] for i in plan[step]], s.max_length, pad_id=self.pad_id, packed=s.packing
            )
            loss = self.loss(batch) / max(batch.trained, 1)
            loss.backward()
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(float(loss.detach()))
            done_tokens += batch.tokens
            trained_tokens += batch.trained
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
            if (step + 1) % s.checkpoint_every == 0 and step + 1 < total:
                self._checkpoint(step + 1, optimizer, scheduler)
        self.model.eval()
        adapter = self.out_dir / "adapter"
        self.model.save_pretrained(str(adapter), save_embedding_layers=False)
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
        self.model.save_pretrained(str(partial), save_embedding_layers=False)
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
        self.on_event({"type": "checkpoint", "step": step, "path": str(folder)})

    def checkpoints(self) -> list[Path]:
        root = self.out_dir / "checkpoints"
        if not root.exists():
            return []
        return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.endswith(".partial"))

    def _resume(self, optimizer: Any, scheduler: Any) -> int:
        import torch
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        found = self.checkpoints()
        if not found:
            return 0
        latest = found[-1]
        weights = load_file(str(latest / "adapter_model.safetensors"), device=self.device)
        set_peft_model_state_dict(self.model, weights)
        state = torch.load(latest / "state.pt", map_location=self.device, weights_only=True)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        self.on_event({"type": "resumed", "step": state["step"], "path": str(latest)})
        return int(state["step"])

    # -- evaluation ------------------------------------------------------------------------

    def answer(self, example: Example, *, adapter: bool) -> str:
        import contextlib

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
        context = contextlib.nullcontext() if adapter else self.model.disable_adapter()
        with torch.no_grad(), context:
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

    def evaluate(self, val: list[Tokenized], examples: list[Example]) -> dict[str, Any]:
        """Held-out loss and exact match and F1 on the answers, base and tuned side by side."""
        from stackyard.evals.scorers.text import token_f1

        def norm(text: str) -> str:
            return " ".join(text.lower().split())

        report: dict[str, Any] = {"examples": len(examples)}
        for name, adapter in (("base", False), ("tuned", True)):
            answers = [self.answer(e, adapter=adapter) for e in examples]
            report[name] = {
                "validation_loss": round(self.mean_loss(val, adapter=adapter), 5),
                "exact_match": _mean(
                    [
                        float(norm(a) == norm(e.answer))
                        for a, e in zip(answers, examples, strict=True)
                    ]
                ),
                "f1": _mean(
                    [token_f1(a, e.answer) for a, e in zip(answers, examples, strict=True)]
                ),
                "samples": [
                    {"expected": e.answer, "answer": a}
                    for a, e in list(zip(answers, examples, strict=True))[:3]
                ],
            }
        self.on_event({"type": "evaluation", **dict(report.items())})
        return report


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
