"""The output-validation rail on a whole chat completion: every choice of an answer asked for
as JSON must be valid JSON (matching the schema, for ``json_schema``), repaired or asked for
again as the policy says (:mod:`stackyard.guardrails.output_json`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from stackyard.errors import APIError
from stackyard.gateway.deployment import Deployment
from stackyard.gateway.router import Routed, RouteStats
from stackyard.guardrails.output_json import Expected, problem, reask_messages, repair

Body = dict[str, Any]
#: Runs a chat body through the router: what the handler does for the first answer.
Ask = Callable[[Body, RouteStats], Awaitable[Routed[Body]]]


class InvalidOutput(APIError):
    """The answer is not the JSON that was asked for, after what the policy allows. It keeps
    what the failed calls used, for the spend log."""

    def __init__(self, why: str, usage: Body | None, deployment: Deployment) -> None:
        super().__init__(
            502,
            f"The model's answer was not the JSON the request asked for: {why}.",
            type="server_error",
            param="response_format",
            code="invalid_json_output",
        )
        self.usage = usage
        self.deployment = deployment


def _add_usage(total: Body | None, more: Body | None) -> Body | None:
    if not more:
        return total
    if not total:
        return dict(more)
    merged = dict(total)
    for name in ("prompt_tokens", "completion_tokens", "total_tokens"):
        merged[name] = int(total.get(name) or 0) + int(more.get(name) or 0)
    return merged


async def validate(
    routed: Routed[Body], body: Body, wanted: Expected, action: str, ask: Ask
) -> str:
    """Check (and fix, as ``action`` allows) the answer's choices in place; return what was
    done (``valid``, ``repaired`` or ``reasked``) or raise :class:`InvalidOutput`."""
    result = routed.result
    outcome = "valid"
    for choice in result.get("choices") or ():
        message = choice.get("message") if isinstance(choice, dict) else None
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, str) or not isinstance(message, dict):
            continue  # a tool call, or a refusal: not the JSON answer
        why = problem(content, wanted)
        if why is None:
            continue
        if action in ("repair", "reask"):
            fixed = repair(content, wanted)
            if fixed is not None:
                message["content"] = fixed
                outcome = "repaired" if outcome == "valid" else outcome
                continue
        if action == "reask":
            again = {**body, "messages": reask_messages(body["messages"], content, why), "n": 1}
            second = await ask(again, RouteStats())
            result["usage"] = _add_usage(result.get("usage"), second.result.get("usage"))
            answer = ((second.result.get("choices") or [{}])[0].get("message") or {}).get("content")
            if isinstance(answer, str):
                fixed = answer if problem(answer, wanted) is None else repair(answer, wanted)
                if fixed is not None:
                    message["content"] = fixed
                    outcome = "reasked"
                    continue
                why = problem(answer, wanted) or why
        raise InvalidOutput(why, result.get("usage"), routed.deployment)
    return outcome
