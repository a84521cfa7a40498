"""The optional parts a :class:`~stackyard.server.app.Stackyard` is built of, each from the
config and what is installed: the cache's backend, RAG (the ``rag`` extra) and fine-tuning (the
``finetune`` extra; its supervisor only where training can run here)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

from stackyard.cache.backends import Backend, MemoryBackend, RedisBackend
from stackyard.config import StackyardConfig
from stackyard.config.loader import ConfigError
from stackyard.gateway.router import Router
from stackyard.store.db import Database

if TYPE_CHECKING:
    from stackyard.finetune.supervisor import Supervisor
    from stackyard.rag.service import RAG
    from stackyard.server.app import Stackyard

RAG_MODULES = ("numpy", "usearch", "snowballstemmer")
FINETUNE_MODULES = ("torch", "transformers", "peft")


def cache_backend(config: StackyardConfig, redis_url: str | None) -> Backend:
    if config.cache.backend == "redis":
        if not redis_url:
            raise ConfigError("cache.backend is redis, but no redis_url is configured")
        return RedisBackend(redis_url)
    if config.cache.backend == "pgvector":
        from stackyard.cache.pgvector import PgVectorBackend

        return PgVectorBackend(str(config.cache.database_url or config.database_url))
    return MemoryBackend(config.cache.max_entries)


def build_rag(
    config: StackyardConfig, db: Database, router: Router, config_file: Path | None
) -> RAG | None:
    """Collections and retrieval, when the rag extra is installed."""
    if any(importlib.util.find_spec(m) is None for m in RAG_MODULES):
        return None
    from stackyard.gateway.rag_models import RouterModels
    from stackyard.rag.service import RAG

    base_dir = config_file.resolve().parent if config_file else Path.cwd()
    models = RouterModels(router)
    return RAG(config.rag, db, models, base_dir=base_dir, ray_address=config.ray_address)


def build_finetuning(
    app: Stackyard, config: StackyardConfig, config_file: Path | None
) -> Supervisor | None:
    """The files and fine-tuning APIs, and (when training can run here) the supervisor that
    starts job workers and serves their models."""
    from stackyard.finetune.api import FineTuningAPI
    from stackyard.finetune.files import Files
    from stackyard.finetune.jobs import Jobs
    from stackyard.finetune.models import TunedModels

    base_dir = config_file.resolve().parent if config_file else Path.cwd()
    data_dir = Path(config.finetune.data_dir or "finetune-jobs")
    jobs = Jobs(app.db, data_dir if data_dir.is_absolute() else base_dir / data_dir)
    trainable = all(importlib.util.find_spec(m) is not None for m in FINETUNE_MODULES)
    FineTuningAPI(
        Files(app.db), jobs, app.gateway.router, app.gateway.governance, trainable=trainable
    ).register(app.routes)
    app.models.tuned = TunedModels(app.db, app.gateway.router)  # DELETE /v1/models/{id}
    if not trainable or config.finetune.max_workers == 0:
        return None
    from stackyard.finetune.supervisor import Supervisor

    return Supervisor(
        jobs,
        app.db.url,
        app.gateway.router,
        app.gateway.http,
        max_workers=config.finetune.max_workers,
        ray=ray_arguments(config),
    )


def ray_arguments(config: StackyardConfig) -> list[str]:
    """A job worker's arguments to train on the configured Ray cluster (none: locally)."""
    if not config.ray_address:
        return []
    found = ["--ray-address", config.ray_address]
    found += ["--ray-workers", str(config.finetune.ray_workers)]
    return found + (["--ray-use-gpu"] if config.finetune.ray_use_gpu else [])
