"""The registry in memory, and its use by the gateway: resolve a name and label to a version
(a weighted split picks one, sticky per user or session), render it, and merge it into a chat
request. The request path reads this snapshot only; it is reloaded when the store changes
(with the key snapshot's notifications and polling)."""

from __future__ import annotations

import hashlib
import logging
import random
from dataclasses import dataclass
from typing import Any

from stackyard.errors import APIError, invalid_request
from stackyard.prompts import registry
from stackyard.prompts.template import RenderError, check_variables, render_messages, render_text
from stackyard.store.db import Database

log = logging.getLogger("stackyard.prompts")
DEFAULT_LABEL = "production"


@dataclass(frozen=True, slots=True)
class Applied:
    name: str
    version: int
    label: str | None


def pick(targets: list[dict[str, Any]], key: str | None, rng: random.Random) -> int:
    """A version from a weighted split: by the hash of ``key`` (sticky) or at random."""
    if len(targets) == 1:
        return int(targets[0]["version"])
    total = sum(float(t["weight"]) for t in targets)
    if key is None:
        point = rng.random() * total
    else:
        digest = hashlib.sha256(key.encode()).digest()
        point = int.from_bytes(digest[:8], "big") / 2**64 * total
    for target in targets:
        point -= float(target["weight"])
        if point < 0:
            return int(target["version"])
    return int(targets[-1]["version"])


def _not_found(message: str, param: str) -> APIError:
    return APIError(404, message, param=param, code="prompt_not_found")


class PromptSnapshot:
    def __init__(self, db: Database | None, *, rng: random.Random | None = None) -> None:
        self.db = db
        self.prompts: dict[str, dict[str, Any]] = {}
        self.rng = rng or random.Random()
        self._version: tuple[object, ...] | None = None

    def load(self) -> bool:
        """Reload if the registry changed; return whether it did."""
        if self.db is None:
            return False
        version = registry.snapshot_version(self.db)
        if version == self._version:
            return False
        self.prompts = registry.load_all(self.db)
        self._version = version
        return True

    def resolve(
        self,
        name: str,
        *,
        label: str | None = None,
        version: int | None = None,
        user: str | None = None,
        session: str | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """(version number, content) for a prompt by version or label (``production`` by
        default); raises a 404 in OpenAI's shape."""
        prompt = self.prompts.get(name)
        if prompt is None:
            raise _not_found(f"No prompt '{name}' in the registry.", "prompt.name")
        versions: dict[int, dict[str, Any]] = prompt["versions"]
        if version is None:
            label = label or DEFAULT_LABEL
            entry = prompt["labels"].get(label)
            if entry is None:
                known = ", ".join(sorted(prompt["labels"])) or "none"
                raise _not_found(
                    f"Prompt '{name}' has no label '{label}' (labels: {known}); name a label "
                    "or a version.",
                    "prompt.label",
                )
            sticky = entry["sticky"]
            key = user if sticky == "user" else session if sticky == "session" else None
            if key is not None:
                key = f"{name}:{label}:{key}"
            version = pick(entry["targets"], key, self.rng)
        content = versions.get(version)
        if content is None:
            listed = ", ".join(map(str, sorted(versions)))
            raise _not_found(
                f"Prompt '{name}' has no version {version} (versions: {listed}).",
                "prompt.version",
            )
        return version, content

    def apply(
        self, body: dict[str, Any], *, user: str | None, session: str | None
    ) -> tuple[dict[str, Any], Applied]:
        """The chat request with the prompt rendered in front of its messages and the
        version's model and parameters filled in where the request sets none."""
        rendered, defaults, applied = self.render(body.get("prompt"), user=user, session=session)
        extra = body.get("messages") or []
        if not isinstance(extra, list):
            raise invalid_request("'messages' must be an array", param="messages")
        merged = {k: v for k, v in body.items() if k != "prompt"}
        for key, value in defaults.items():
            merged.setdefault(key, value)
        merged["messages"] = [*rendered, *extra]
        return merged, applied

    def render(
        self, spec: Any, *, user: str | None, session: str | None
    ) -> tuple[list[dict[str, Any]], dict[str, Any], Applied]:
        """A request's ``prompt`` field rendered: the chat messages, the version's model and
        parameters (for the request to take where it sets none), and which version it was."""
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise invalid_request(
                "'prompt' must be an object with a 'name' (and a 'label' or 'version', and "
                "'variables')",
                param="prompt",
            )
        label, version = spec.get("label"), spec.get("version")
        if label is not None and not isinstance(label, str):
            raise invalid_request("'prompt.label' must be a string", param="prompt.label")
        if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
            raise invalid_request("'prompt.version' must be an integer", param="prompt.version")
        variables = spec.get("variables") or {}
        if not isinstance(variables, dict):
            raise invalid_request("'prompt.variables' must be an object", param="prompt.variables")
        name = spec["name"]
        number, content = self.resolve(
            name, label=label, version=version, user=user, session=session
        )
        try:
            values = check_variables(content.get("variables") or {}, variables)
            engine = content.get("engine", "mustache")
            if content["type"] == "text":
                rendered = [
                    {"role": "user", "content": render_text(content["template"], values, engine)}
                ]
            else:
                rendered = render_messages(content["messages"], values, engine)
        except RenderError as exc:
            param = f"prompt.variables.{exc.variable}" if exc.variable else "prompt"
            raise invalid_request(
                f"Prompt '{name}' version {number}: {exc}", param=param, code="invalid_prompt"
            ) from None
        defaults = dict(content.get("config") or {})
        return (
            rendered,
            defaults,
            Applied(name, number, (label or DEFAULT_LABEL) if version is None else None),
        )
