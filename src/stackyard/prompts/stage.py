"""The prompt registry as a stage: a request's ``prompt`` field (a name, a label or version,
variables) becomes the version's messages in front of the request's own, and the version's
parameters where the request sets none. It renders only for a caller whose key was checked,
and before admission counts the request's tokens against limits and budgets."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from stackyard.gateway.pipeline.stage import Stage

if TYPE_CHECKING:
    from stackyard.gateway.pipeline.exchange import Exchange
    from stackyard.gateway.service import Gateway
    from stackyard.prompts.snapshot import Applied

#: ``ex.state`` key: what was rendered, and when.
RENDERED = "prompt"


class PromptStage(Stage):
    name = "prompt"

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    async def prepare(self, ex: Exchange) -> None:
        spec = ex.options.get("prompt")
        if spec is None:
            return
        session = ex.request.header(b"x-stackyard-session-id")
        user = ex.body.get("user")
        metadata = ex.body.get("metadata")
        if user is None and isinstance(metadata, dict):  # Anthropic's Messages
            user = metadata.get("user_id")
        started = time.time_ns()
        rendered, defaults, applied = self.gateway.prompts.render(
            spec,
            user=user if isinstance(user, str) else None,
            session=session.decode("latin-1") if session else None,
        )
        ex.body = ex.door.with_prompt(ex.body, rendered, defaults)
        ex.state[RENDERED] = (applied, started, time.time_ns())

    async def before(self, ex: Exchange) -> None:
        found: tuple[Applied, int, int] | None = ex.state.get(RENDERED)
        if found is None:
            return
        applied, started, ended = found
        served = f"{applied.name}@{applied.version}".encode()
        ex.headers.append((b"x-stackyard-prompt", served))
        trace = ex.admitted.trace
        if trace is not None:
            trace.prompt_name = applied.name
            trace.prompt_version = applied.version
            # Stored with the rendered request: the variables make a dataset item later.
            trace.body = {**ex.body, "prompt": ex.options["prompt"]}
            span = trace.child("prompt.render", started, ended)
            span.attributes["stackyard.prompt.name"] = applied.name
            span.attributes["stackyard.prompt.version"] = applied.version
