"""The client: a base URL, a key, and JSON over HTTP with the standard library (no extra
dependency for applications that only want their prompts or passages)."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any


class ClientError(Exception):
    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class Client:
    """``Client()`` reads ``STACKYARD_BASE_URL`` (default ``http://127.0.0.1:8000``) and
    ``STACKYARD_API_KEY`` (or ``OPENAI_API_KEY``)."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 5.0,
        cache_dir: str | Path | None = None,
        label_ttl: float = 10.0,
    ) -> None:
        from stackyard.client.collections import CollectionsClient
        from stackyard.client.prompts import PromptsClient

        url = base_url or os.environ.get("STACKYARD_BASE_URL") or "http://127.0.0.1:8000"
        self.base_url = url.rstrip("/").removesuffix("/v1")
        self.api_key = (
            api_key or os.environ.get("STACKYARD_API_KEY") or os.environ.get("OPENAI_API_KEY")
        )
        self.timeout = timeout
        self.prompts = PromptsClient(self, cache_dir=cache_dir, label_ttl=label_ttl)
        self.collections = CollectionsClient(self)

    def request(
        self, method: str, path: str, body: Any = None, *, timeout: float | None = None
    ) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.base_url}{path}", data=data, method=method)
        request.add_header("content-type", "application/json")
        if self.api_key:
            request.add_header("authorization", f"Bearer {self.api_key}")
        try:
            with urllib.request.urlopen(request, timeout=timeout or self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read())["error"]["message"]
            except Exception:
                message = str(exc)
            raise ClientError(message, exc.code) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            raise ClientError(f"cannot reach {self.base_url}: {exc}") from None
