"""The output-validation rail on a whole answer: every text of an answer asked for as JSON must
be valid JSON (matching the schema, for a JSON schema), repaired or asked for again as the
policy says (:mod:`stackyard.guardrails.output_json`). The door says where an answer's texts
are and how to ask again (chat choices; a Messages reply's text blocks)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from stackyard.errors import APIError
from stackyard.gateway.deployment import Deployment
from stackyard.gateway.router import Routed, RouteStats
from stackyard.guardrails.output_json import Expected, problem, repair

if TYPE_CHECKING:
    from stackyard.gateway.pipeline.door import Door

Body = dict[str, Any]
#: Runs a body through the router: what the pipeline does for the first answer.
Ask = Callable[[Body, RouteStats], Awaitable[Routed[Body]]]


class InvalidOutput(APIError):
    """The answer is not the JSON that was asked for, after what the policy allows. It keeps
    what the failed calls used, for the spend log."""

    def __init__(
        self,
        why: str,
        usage: Body | None,
        deployment: Deployment,
        param: str = "response_format",
    ) -> None:
        super().__init__(
            502,
            f"The model's answer was not the JSON the request asked for: {why}.",
            type="server_error",
            param=param,
            code="invalid_json_output",
        )
        self.usage = usage
        self.deployment = deployment


async def validate(
    door: Door, routed: Routed[Body], body: Body, wanted: Expected, action: str, ask: Ask
) -> str:
    """Check (and fix, as ``action`` allows) the answer's texts in place; return what was
    done (``valid``, ``repaired`` or ``reasked``) or raise :class:`InvalidOutput`."""
    result = routed.result
    outcome = "valid"
    for content, put in door.json_texts(result):
        why = problem(content, wanted)
        if why is None:
            continue
        if action in ("repair", "reask"):
            fixed = repair(content, wanted)
            if fixed is not None:
                put(fixed)
                outcome = "repaired" if outcome == "valid" else outcome
                continue
        if action == "reask":
            second = await ask(door.reask(body, content, why), RouteStats())
            door.add_usage(result, second.result)
            answers = door.json_texts(second.result)
            if answers:
                answer = answers[0][0]
                fixed = answer if problem(answer, wanted) is None else repair(answer, wanted)
                if fixed is not None:
                    put(fixed)
                    outcome = "reasked"
                    continue
                why = problem(answer, wanted) or why
        raise InvalidOutput(why, door.usage(result), routed.deployment, wanted.param)
    return outcome
