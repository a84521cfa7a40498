"""The exact tier's key: the tenant, the model (with the upstream models behind its name, so
that re-pointing an alias does not serve old answers), the namespace, and a hash of the whole
canonical request: messages, system prompt, tools, ``response_format`` and every sampling
parameter. Only what cannot change the answer is left out."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

#: Fields that do not change the answer (how it is delivered, who asked, bookkeeping).
NOT_IN_KEY = frozenset({"stream", "stream_options", "user", "metadata", "cache", "store"})


def request_hash(body: dict[str, Any]) -> str:
    canonical = {k: v for k, v in body.items() if k not in NOT_IN_KEY}
    return hashlib.sha256(orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)).hexdigest()


def cache_key(tenant: str, model_fingerprint: str, namespace: str, body: dict[str, Any]) -> str:
    scope = orjson.dumps([tenant, model_fingerprint, namespace])
    return hashlib.sha256(scope + b"\x00" + request_hash(body).encode()).hexdigest()
