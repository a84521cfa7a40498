"""The server's side of fine-tuning: start a worker process for each waiting job (up to
``finetune.max_workers``), take over jobs whose worker went silent (a crash, or a server that
stopped), stop workers when the server stops, and serve every succeeded job's model (and, on
demand, its LoRA checkpoints) through the router, with no restart, from the database when the
job ran on another machine."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
from pathlib import Path

from stackyard.config.schema import ENGINE_OPTIONS, ModelEntry
from stackyard.finetune.jobs import Jobs
from stackyard.finetune.models import TunedModels
from stackyard.finetune.weights import CHECKPOINT, Weights, kind_of
from stackyard.gateway.providers import registry
from stackyard.gateway.providers.http import HttpClient
from stackyard.gateway.router import Router

log = logging.getLogger("stackyard.finetune")
POLL = 1.0


class Supervisor:
    def __init__(
        self,
        jobs: Jobs,
        database_url: str,
        router: Router,
        http: HttpClient,
        *,
        max_workers: int = 1,
        ray: list[str] | None = None,
    ) -> None:
        self.jobs = jobs
        self.database_url = database_url
        self.router = router
        self.http = http
        self.max_workers = max_workers
        self.ray = ray or []  # the worker's arguments to train on a Ray cluster
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.workers: dict[str, asyncio.subprocess.Process] = {}
        self.served: set[str] = set()
        self.weights = Weights(jobs.db, jobs.data_dir / "served")
        self.tuned = TunedModels(jobs.db, router)
        router.discover = self.discover

    async def run(self) -> None:
        while True:
            try:
                await self.step()
            except Exception:
                log.exception("the fine-tuning supervisor failed a round; it tries again")
            await asyncio.sleep(POLL)

    async def step(self) -> None:
        for job_id, process in list(self.workers.items()):
            if process.returncode is not None:
                del self.workers[job_id]
        if len(self.workers) < self.max_workers:
            for job_id in await asyncio.to_thread(self.jobs.claimable):
                if job_id in self.workers:
                    continue
                if await asyncio.to_thread(self.jobs.claim, job_id, self.name):
                    await self._start(job_id)
                    break
        await asyncio.to_thread(self.serve_succeeded)
        await self.withdraw_deleted()

    async def _start(self, job_id: str) -> None:
        out = self.jobs.out_dir(job_id)
        out.mkdir(parents=True, exist_ok=True)
        log_file = (out / "worker.log").open("ab")
        try:
            self.workers[job_id] = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "stackyard.finetune.worker",
                "--database",
                self.database_url,
                "--data-dir",
                str(self.jobs.data_dir),
                "--job",
                job_id,
                *self.ray,
                stdout=log_file,
                stderr=log_file,
            )
        finally:
            log_file.close()
        log.info("fine-tuning job %s started (worker pid %d)", job_id, self.workers[job_id].pid)

    def discover(self, model: str) -> bool:
        """A fine-tuned model (or a LoRA checkpoint) asked for before the next poll served it.
        Whole models (full fine-tuning) are left to the poll: unpacking them takes a while."""
        if not model.startswith("ft:") or model in self.served:
            return False
        if CHECKPOINT.match(model):
            stored = self.weights.find(model)
            if stored is None or stored.kind != "adapter":
                return False
            record = self.jobs.record(stored.job_id)
            self._serve(model, record.model, small=True)
        else:
            self.serve_succeeded(small=True)
        return model in self.router.deployments

    async def withdraw_deleted(self) -> None:
        """Stop serving the fine-tuned models deleted since (on any instance)."""
        names = [name for name in self.served if name in self.router.deployments]
        if names:
            await self.tuned.withdraw(await asyncio.to_thread(self.tuned.deleted, names))

    def serve_succeeded(self, *, small: bool = False) -> None:
        """Add the models of succeeded jobs (from any instance) to the router."""
        for job in self.jobs.succeeded():
            name = job.fine_tuned_model
            if name is None or name in self.served:
                continue
            self._serve(name, job.model, local=job.adapter_path, small=small)

    def _serve(
        self, name: str, base_name: str, *, local: str | None = None, small: bool = False
    ) -> None:
        """Serve ``name`` from its files: on this machine's disk if the job ran here, else
        unpacked from the database (``small``: only if it is an adapter)."""
        folder = Path(local) if local and Path(local).exists() else None
        if folder is None:
            stored = self.weights.find(name)
            if stored is None:
                self.served.add(name)
                log.warning("%s: its weights are neither here nor in the database", name)
                return
            if small and stored.kind != "adapter":
                return  # the next poll unpacks it, off the request path
            folder = self.weights.fetch(name)
        self.served.add(name)
        base = self.router.deployments.get(base_name)
        if not base or folder is None:
            log.warning("%s: its base model %s is not configured here", name, base_name)
            return
        entry = base[0].entry
        options = {k: v for k, v in entry.options.items() if k in ENGINE_OPTIONS}
        adapter = kind_of(folder) == "adapter"
        tuned = ModelEntry(
            name=name,
            provider=entry.provider,
            model=entry.upstream_model if adapter else str(folder),
            adapter=str(folder) if adapter else None,
            options={**options, "load": "lazy"},
        )
        try:
            self.router.add(tuned, registry.create(tuned, self.http))
        except ValueError as exc:
            log.warning("%s cannot be served: %s", name, exc)
            return
        log.info("serving the fine-tuned model %s", name)

    async def aclose(self) -> None:
        """Ask each worker to stop at its next step (it keeps a checkpoint), then wait."""
        for process in self.workers.values():
            if process.returncode is None:
                process.terminate()
        for process in self.workers.values():
            try:
                await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                process.kill()
                await process.wait()
