"""The process that runs one fine-tuning job: ``python -m stackyard.finetune.worker``.

The server starts it (never its event loop), and it reports through the database: status,
heartbeat, events with the loss, tokens per second and time left, checkpoints. It stops at the
next step when the job is cancelled or paused, or when it gets SIGTERM (the server stopping):
then the job stays ``running`` with no heartbeat, and the next server resumes it from its last
checkpoint.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stackyard.finetune.files import Files
from stackyard.finetune.jobs import Jobs, model_name, now
from stackyard.finetune.run import InvalidData, RunConfig, run
from stackyard.finetune.train import Stopped
from stackyard.finetune.weights import Weights, checkpoint_name
from stackyard.store.db import Database

if TYPE_CHECKING:
    from stackyard.finetune.distributed import RayTraining

log = logging.getLogger("stackyard.finetune")
HEARTBEAT = 5.0


class Worker:
    def __init__(
        self, db: Database, data_dir: Path, job_id: str, cluster: RayTraining | None = None
    ) -> None:
        self.cluster = cluster
        self.jobs = Jobs(db, data_dir)
        self.files = Files(db)
        self.weights = Weights(db, data_dir / "served")
        self.job_id = job_id
        self.model = ""  # the model id the job's result will be served as
        self.requested: str | None = None
        self.interrupted = threading.Event()
        self.stopping = threading.Event()
        self.last_loss: float | None = None

    def control(self) -> str | None:
        if self.interrupted.is_set():
            return "interrupt"
        return self.requested if self.requested in ("cancel", "pause") else None

    def _heartbeats(self) -> None:
        while not self.stopping.wait(HEARTBEAT):
            try:
                self.requested = self.jobs.beat(self.job_id)
            except Exception:
                log.exception("heartbeat failed")

    def on_event(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        job = self.job_id
        if kind == "metrics":
            self.last_loss = event["train_loss"]
            finish = now() + dt.timedelta(seconds=event["eta_seconds"])
            self.requested = self.jobs.beat(job, estimated_finish=finish)
            self.jobs.event(
                job,
                "info",
                f"Step {event['step']}/{event['total_steps']}: training loss="
                f"{event['train_loss']:.4f}, {event['tokens_per_second']:.0f} tokens/s, "
                f"{event['eta_seconds']:.0f} s left",
                event,
            )
        elif kind == "checkpoint":
            metrics = {"train_loss": self.last_loss} if self.last_loss is not None else {}
            folder = Path(event["path"])
            if (folder / "adapter_config.json").exists():  # servable by every instance
                name = checkpoint_name(self.model, event["step"])
                self.weights.put(job, name, folder, step=event["step"])
            self.jobs.event(
                job,
                "info",
                f"Checkpoint written at step {event['step']}",
                {**event, "metrics": metrics},
            )
        elif kind == "resumed":
            self.jobs.event(
                job, "info", f"Resumed from the checkpoint at step {event['step']}", event
            )
        elif kind == "validated":
            self.jobs.beat(job, status="running")
            self.jobs.event(
                job,
                "info",
                f"Files validated: {event['train']} training and {event['validation']} "
                f"validation examples, {event['tokens']} tokens; training started",
                event,
            )
        elif kind == "evaluation":
            base, tuned = event["base"], event["tuned"]
            self.jobs.event(
                job,
                "info",
                f"Evaluation on {event['examples']} validation examples: loss "
                f"{base['validation_loss']} -> {tuned['validation_loss']}, F1 {base['f1']} -> "
                f"{tuned['f1']}, exact match {base['exact_match']} -> {tuned['exact_match']}",
                event,
            )
        elif kind == "cluster":
            self.jobs.event(
                job,
                "info",
                f"Training on the Ray cluster {event['address']} with {event['workers']} workers",
                event,
            )
        elif kind == "loading":
            self.jobs.event(job, "info", f"Loading {event['base']}", event)

    def run(self) -> int:
        record = self.jobs.record(self.job_id)
        self.model = model_name(record.model, record.suffix, self.job_id)
        out = self.jobs.out_dir(self.job_id)
        out.mkdir(parents=True, exist_ok=True)
        self._recover_checkpoint(out)
        training = out / "training.jsonl"
        training.write_bytes(self.files.content(record.training_file))
        validation = None
        if record.validation_file:
            validation = out / "validation.jsonl"
            validation.write_bytes(self.files.content(record.validation_file))
        config = RunConfig.model_validate(
            {
                **record.settings,
                "training_file": str(training),
                "validation_file": str(validation) if validation else None,
                "output_dir": str(out),
                "suffix": record.suffix,
            }
        )
        beats = threading.Thread(target=self._heartbeats, daemon=True)
        beats.start()
        try:
            result = run(
                config, out, on_event=self.on_event, control=self.control, cluster=self.cluster
            )
        except InvalidData as exc:
            self._end("failed", str(exc), code="invalid_training_file", param="training_file")
            return 1
        except Stopped as stop:
            return self._stopped(stop)
        except Exception as exc:
            log.exception("the job failed")
            self._end("failed", f"training failed: {exc}", code="training_failed")
            return 1
        finally:
            self.stopping.set()
        name = self.model
        self.weights.put(self.job_id, name, Path(result["adapter"]))
        losses = [
            e["data"]
            for e in self.jobs.events(self.job_id, limit=100_000)[0]
            if e["type"] == "metrics"
        ]
        csv = "step,train_loss,tokens_per_second\n" + "".join(
            f"{d['step']},{d['train_loss']},{d['tokens_per_second']}\n" for d in reversed(losses)
        )
        results = self.files.create(
            f"{self.job_id}-results.csv", "fine-tune-results", csv.encode(), record.team_id
        )
        self.jobs.event(self.job_id, "info", f"The job has succeeded: {name}")
        self.jobs.release(
            self.job_id,
            status="succeeded",
            fine_tuned_model=name,
            adapter_path=result["adapter"],
            trained_tokens=result["trained_tokens"],
            result=result,
            result_files=[results["id"]],
            finished_at=now(),
            estimated_finish=None,
        )
        return 0

    def _recover_checkpoint(self, out: Path) -> None:
        """A job taken over from another instance resumes from its latest checkpoint in the
        database (LoRA jobs store theirs there) when this machine has none."""
        local = out / "checkpoints"
        if local.exists() and any(p.is_dir() for p in local.iterdir()):
            return
        stored = self.weights.latest_checkpoint(self.job_id)
        if stored is None or stored.step is None:
            return
        self.weights.fetch(stored.name, into=local / f"step-{stored.step:06d}")
        log.info("%s: recovered the checkpoint at step %d", self.job_id, stored.step)

    def _stopped(self, stop: Stopped) -> int:
        if stop.why == "cancel":
            self._end("cancelled", None)
            self.jobs.event(self.job_id, "info", f"Cancelled at step {stop.step}")
        elif stop.why == "pause":
            self.jobs.release(self.job_id, status="queued", estimated_finish=None)
            self.jobs.event(self.job_id, "info", f"Paused at step {stop.step} (checkpoint kept)")
        else:  # the server is stopping: the next one resumes the job
            self.jobs.release(self.job_id)
            self.jobs.event(self.job_id, "info", f"Interrupted at step {stop.step}; will resume")
        return 0

    def _end(
        self, status: str, message: str | None, *, code: str = "", param: str | None = None
    ) -> None:
        error = {"code": code, "message": message, "param": param} if message else None
        if message:
            self.jobs.event(self.job_id, "error", message)
        self.jobs.release(
            self.job_id, status=status, error=error, finished_at=now(), estimated_finish=None
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run one fine-tuning job.")
    parser.add_argument("--database", required=True)
    parser.add_argument("--data-dir", required=True, type=Path)
    parser.add_argument("--job", required=True)
    parser.add_argument("--ray-address", help="train on this Ray cluster")
    parser.add_argument("--ray-workers", type=int, default=1)
    parser.add_argument("--ray-use-gpu", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    cluster = None
    if args.ray_address:
        from stackyard.finetune.distributed import RayTraining

        cluster = RayTraining(args.ray_address, workers=args.ray_workers, use_gpu=args.ray_use_gpu)
    worker = Worker(Database(args.database), args.data_dir, args.job, cluster)
    signal.signal(signal.SIGTERM, lambda *_: worker.interrupted.set())
    signal.signal(signal.SIGINT, lambda *_: worker.interrupted.set())
    return worker.run()


if __name__ == "__main__":
    sys.exit(main())
