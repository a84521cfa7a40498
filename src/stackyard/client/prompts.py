"""Prompts from the registry, cached: a version forever (versions are immutable), a label for
``label_ttl`` seconds and then served stale while one background refresh runs. Every prompt
fetched is also kept on disk, so that a process started while the server is down still gets
it; with nothing cached and the server down, an explicit ``fallback`` is used."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stackyard.prompts.template import check_variables, render_messages, render_text

if TYPE_CHECKING:
    from stackyard.client.base import Client

log = logging.getLogger("stackyard.client")


@dataclass(frozen=True)
class Prompt:
    name: str
    version: int | None
    type: str
    template: str | None = None
    messages: list[dict[str, Any]] | None = None
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)
    engine: str = "mustache"
    config: dict[str, Any] = field(default_factory=dict)
    #: True when this is the caller's fallback, not a version from the registry.
    is_fallback: bool = False

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Prompt:
        return cls(
            name=data["name"],
            version=data["version"],
            type=data["type"],
            template=data.get("template"),
            messages=data.get("messages"),
            variables=data.get("variables") or {},
            engine=data.get("engine") or "mustache",
            config=data.get("config") or {},
        )

    def compile(self, **variables: Any) -> Any:
        """The text (a text prompt) or the messages (a chat prompt), rendered."""
        values = check_variables(self.variables, variables)
        if self.type == "text":
            return render_text(self.template or "", values, self.engine)
        return render_messages(self.messages or [], values, self.engine)


def _fallback(name: str, fallback: str | list[dict[str, Any]]) -> Prompt:
    """The caller's own text or messages, with the variables its ``{{...}}`` use."""
    from stackyard.prompts.model import PromptContent

    if isinstance(fallback, str):
        content = PromptContent(template=fallback)
    else:
        content = PromptContent(messages=fallback)
    return Prompt(
        name,
        None,
        str(content.type),
        template=content.template,
        messages=content.messages,
        variables=content.schema_dict(),
        is_fallback=True,
    )


class PromptsClient:
    def __init__(self, client: Client, *, cache_dir: str | Path | None, label_ttl: float) -> None:
        self.client = client
        self.label_ttl = label_ttl
        default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "stackyard"
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default / "prompts"
        self._versions: dict[tuple[str, int], Prompt] = {}
        #: (name, label) -> (prompt, fetched at)
        self._labels: dict[tuple[str, str], tuple[Prompt, float]] = {}
        self._refreshing: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def get(
        self,
        name: str,
        *,
        label: str | None = None,
        version: int | None = None,
        fallback: str | list[dict[str, Any]] | None = None,
    ) -> Prompt:
        """A prompt by version, or by label (``production`` by default)."""
        if version is not None:
            found = self._versions.get((name, version))
            if found is not None:
                return found
            return self._fetch_version(name, version, fallback)
        key = (name, label or "production")
        cached = self._labels.get(key)
        if cached is not None:
            prompt, fetched = cached
            if time.monotonic() - fetched > self.label_ttl:
                self._refresh_in_background(key)
            return prompt
        return self._fetch_label(key, fallback)

    def _path(self, kind: str, name: str, ref: str) -> Path:
        safe = urllib.parse.quote(f"{name}{kind}{ref}", safe="")
        return self.cache_dir / f"{safe}.json"

    def _save(self, kind: str, name: str, ref: str, data: dict[str, Any]) -> None:
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            path = self._path(kind, name, ref)
            temporary = path.with_suffix(".tmp")
            temporary.write_text(json.dumps(data))
            temporary.replace(path)  # atomic: a reader never sees half a file
        except OSError:
            log.warning("could not keep prompt %s on disk in %s", name, self.cache_dir)

    def _load(self, kind: str, name: str, ref: str) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads(self._path(kind, name, ref).read_text())
            return data
        except (OSError, ValueError):
            return None

    def _fetch_version(
        self, name: str, version: int, fallback: str | list[dict[str, Any]] | None
    ) -> Prompt:
        from stackyard.client.base import ClientError

        quoted = urllib.parse.quote(name, safe="")
        try:
            data = self.client.request("GET", f"/api/prompts/{quoted}/versions/{version}")
            self._save("@", name, str(version), data)
        except ClientError as exc:
            data = self._load("@", name, str(version)) if exc.status is None else None
            if data is None:
                if fallback is not None:
                    return _fallback(name, fallback)
                raise
        prompt = Prompt.from_api(data)
        self._versions[(name, version)] = prompt
        return prompt

    def _fetch_label(
        self, key: tuple[str, str], fallback: str | list[dict[str, Any]] | None
    ) -> Prompt:
        from stackyard.client.base import ClientError

        name, label = key
        quoted = urllib.parse.quote(name, safe="")
        try:
            data = self.client.request(
                "GET", f"/api/prompts/{quoted}/labels/{urllib.parse.quote(label, safe='')}"
            )
            self._save(":", name, label, data)
        except ClientError as exc:
            data = self._load(":", name, label) if exc.status is None else None
            if data is None:
                if fallback is not None:
                    return _fallback(name, fallback)
                raise
        prompt = Prompt.from_api(data)
        self._versions[(name, prompt.version or 0)] = prompt
        self._labels[key] = (prompt, time.monotonic())
        return prompt

    def _refresh_in_background(self, key: tuple[str, str]) -> None:
        with self._lock:
            if key in self._refreshing:
                return
            self._refreshing.add(key)

        def refresh() -> None:
            try:
                self._fetch_label(key, None)
            except Exception:
                # Keep serving what we have; try again at the next stale read.
                prompt, _ = self._labels[key]
                self._labels[key] = (prompt, time.monotonic())
                log.warning("could not refresh prompt %s:%s; serving the cached one", *key)
            finally:
                with self._lock:
                    self._refreshing.discard(key)

        threading.Thread(target=refresh, daemon=True).start()
