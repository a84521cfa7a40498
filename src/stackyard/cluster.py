"""Joining a Ray cluster (``ray_address`` in the config), shared by the pillars that use one:
RAG syncs and fine-tuning jobs. ``local`` starts a runtime on this machine."""

from __future__ import annotations

import logging
from typing import Any


def ray_module() -> Any:
    """Ray, or a clear error naming the extra to install."""
    try:
        import ray
    except ImportError:
        raise RuntimeError(
            "ray_address is set but Ray is not installed: pip install 'stackyard[ray]'"
        ) from None
    return ray


def connect(address: str) -> None:
    """Join the cluster at ``address`` (``auto``, ``ray://host:10001``), or start a runtime
    on this machine for ``local``; once per process. Ray must come before anything loads
    usearch (RAG's vector index): the other order aborts in ``ray.init``."""
    ray = ray_module()
    if ray.is_initialized():
        return
    ray.init(
        address=None if address == "local" else address,
        include_dashboard=False,
        logging_level=logging.WARNING,
        log_to_driver=False,
        # The workers import Stackyard from the driver's environment.
        runtime_env={"env_vars": {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}},
    )
