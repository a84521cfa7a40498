"""A fine-tuning run on a Ray cluster (``ray_address`` in the config), with Ray Train: the same
:class:`~stackyard.finetune.train.Trainer` runs on ``workers`` processes (data parallel: each
takes a share of every step, gradients are summed), so a job moves from a laptop to a GPU
cluster with nothing rewritten. One worker gives exactly a local run.

Nothing assumes a shared filesystem. The driver (the job's worker process, or the CLI) keeps
the run's folder: it sends the latest checkpoint to the workers when resuming, and the first
worker sends back each checkpoint and the result as files, with the events (loss, tokens per
second, time left), through a small actor. The driver's pause and cancel requests go the
other way, and are read at each step.
"""

from __future__ import annotations

import io
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from stackyard.cluster import connect, ray_module
from stackyard.finetune.archive import pack, unpack
from stackyard.finetune.settings import Settings
from stackyard.finetune.tokens import Tokenized
from stackyard.finetune.train import Control, Event, Result, Stopped, Trainer

POLL = 0.2


def _packed(folder: Path) -> bytes:
    buffer = io.BytesIO()
    pack(folder, buffer)
    return buffer.getvalue()


def _unpacked(data: bytes, folder: Path) -> Path:
    return unpack(io.BytesIO(data), folder)


class _Channel:
    """Events from the first worker to the driver; the driver's control word to the workers."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.word: str | None = None

    def put(self, event: dict[str, Any]) -> None:
        self.events.append(event)

    def drain(self) -> list[dict[str, Any]]:
        events, self.events = self.events, []
        return events

    def say(self, word: str | None) -> None:
        self.word = word

    def control(self) -> str | None:
        return self.word


def _train_loop(config: dict[str, Any]) -> None:
    """What each Ray Train worker runs: the local trainer, in a folder of its own."""
    import ray
    import ray.train

    rank = ray.train.get_context().get_world_rank()
    channel = config["channel"]
    out = Path(tempfile.mkdtemp(prefix="stackyard-finetune-"))
    try:
        if config["checkpoint"] is not None:
            name, data = config["checkpoint"]
            _unpacked(data, out / "checkpoints" / name)

        def emit(event: dict[str, Any]) -> None:
            if rank != 0:
                return
            if event["type"] == "checkpoint":
                event = {**event, "files": _packed(Path(event["path"]))}
            ray.get(channel.put.remote(event))  # in order, and before the next step

        trainer = Trainer(Settings.model_validate(config["settings"]), out, emit)
        trainer.load()
        try:
            result = trainer.train(config["items"], lambda: ray.get(channel.control.remote()))
        except Stopped as stop:
            emit({"type": "stopped", "why": stop.why, "step": stop.step})
            return
        if rank != 0:
            return  # only the first worker saves the adapter, and only it reports
        emit(
            {
                "type": "finished",
                "steps": result.steps,
                "trained_tokens": result.trained_tokens,
                "seconds": result.seconds,
                "train_loss": result.train_loss,
                "files": _packed(result.adapter),
            }
        )
    finally:
        shutil.rmtree(out, ignore_errors=True)


class RayTraining:
    """Runs :meth:`Trainer.train`'s job on the cluster at ``address``."""

    def __init__(self, address: str, *, workers: int = 1, use_gpu: bool = False) -> None:
        ray_module()  # a clear error now if Ray is missing
        self.address = address
        self.workers = workers
        self.use_gpu = use_gpu

    def train(
        self,
        trainer: Trainer,
        items: list[Tokenized],
        on_event: Event,
        control: Control | None = None,
    ) -> Result:
        """Train on the cluster; the driver's ``trainer`` (its folder, its settings) gets the
        checkpoints, the result and the tuned weights, ready to evaluate."""
        ray = ray_module()
        connect(self.address)
        from ray.train import RunConfig, ScalingConfig
        from ray.train.torch import TorchTrainer

        out = trainer.out_dir
        found = trainer.checkpoints()
        checkpoint = (found[-1].name, _packed(found[-1])) if found else None
        channel = ray.remote(num_cpus=0)(_Channel).remote()
        fit = TorchTrainer(
            _train_loop,
            train_loop_config={
                "settings": trainer.settings.model_dump(),
                "items": items,
                "checkpoint": checkpoint,
                "channel": channel,
            },
            scaling_config=ScalingConfig(num_workers=self.workers, use_gpu=self.use_gpu),
            run_config=RunConfig(storage_path=str((out / "ray").resolve()), name="train"),
        )
        failure: list[BaseException] = []

        def run() -> None:
            try:
                fit.fit()
            except BaseException as exc:  # reported by the driver's thread below
                failure.append(exc)

        thread = threading.Thread(target=run, name="ray-train", daemon=True)
        thread.start()
        on_event({"type": "cluster", "address": self.address, "workers": self.workers})
        finished: dict[str, Any] | None = None
        stopped: dict[str, Any] | None = None
        said: str | None = None
        while True:
            alive = thread.is_alive()
            for event in ray.get(channel.drain.remote()):
                kind = event["type"]
                if kind == "checkpoint":
                    folder = _unpacked(
                        event.pop("files"), out / "checkpoints" / Path(event["path"]).name
                    )
                    if trainer.full:
                        for older in trainer.checkpoints()[:-1]:
                            shutil.rmtree(older, ignore_errors=True)
                    on_event({**event, "path": str(folder)})
                elif kind == "resumed":
                    on_event({**event, "path": str(out / "checkpoints" / Path(event["path"]).name)})
                elif kind == "finished":
                    finished = event
                elif kind == "stopped":
                    stopped = event
                else:
                    on_event(event)
            if not alive:
                break
            word = control() if control is not None else None
            if word != said:
                ray.get(channel.say.remote(word))
                said = word
            time.sleep(POLL)
        ray.kill(channel)
        if stopped is not None:
            raise Stopped(stopped["why"], stopped["step"])
        if finished is None:
            reason = failure[0] if failure else "the workers ended without a result"
            raise RuntimeError(f"training on the Ray cluster failed: {reason}")
        adapter = _unpacked(finished["files"], out / ("model" if trainer.full else "adapter"))
        trainer.load_weights(adapter)
        return Result(
            steps=finished["steps"],
            trained_tokens=finished["trained_tokens"],
            seconds=finished["seconds"],
            train_loss=finished["train_loss"],
            adapter=adapter,
        )
