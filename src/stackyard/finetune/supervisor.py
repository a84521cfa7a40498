"""The server's side of fine-tuning: start a worker process for each waiting job (up to
``finetune.max_workers``), take over jobs whose worker went silent (a crash, or a server that
stopped), stop workers when the server stops, and serve every succeeded job's model through
the router, with no restart."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
from pathlib import Path

from stackyard.config.schema import ENGINE_OPTIONS, ModelEntry
from stackyard.finetune.jobs import Jobs
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
    ) -> None:
        self.jobs = jobs
        self.database_url = database_url
        self.router = router
        self.http = http
        self.max_workers = max_workers
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.workers: dict[str, asyncio.subprocess.Process] = {}
        self.served: set[str] = set()
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
                stdout=log_file,
                stderr=log_file,
            )
        finally:
            log_file.close()
        log.info("fine-tuning job %s started (worker pid %d)", job_id, self.workers[job_id].pid)

    def discover(self, model: str) -> bool:
        """A fine-tuned model asked for before the next poll served it."""
        if not model.startswith("ft:") or model in self.served:
            return False
        self.serve_succeeded()
        return model in self.router.deployments

    def serve_succeeded(self) -> None:
        """Add the models of succeeded jobs (from any instance) to the router."""
        for job in self.jobs.succeeded():
            name = job.fine_tuned_model
            if name is None or name in self.served or job.adapter_path is None:
                continue
            self.served.add(name)
            if not Path(job.adapter_path).exists():
                log.warning("%s: its adapter %s is not on this machine", name, job.adapter_path)
                continue
            base = self.router.deployments.get(job.model)
            if not base:
                log.warning("%s: its base model %s is not configured here", name, job.model)
                continue
            entry = base[0].entry
            options = {k: v for k, v in entry.options.items() if k in ENGINE_OPTIONS}
            tuned = ModelEntry(
                name=name,
                provider=entry.provider,
                model=entry.upstream_model,
                adapter=job.adapter_path,
                options={**options, "load": "lazy"},
            )
            try:
                self.router.add(tuned, registry.create(tuned, self.http))
            except ValueError as exc:
                log.warning("%s cannot be served: %s", name, exc)
                continue
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
