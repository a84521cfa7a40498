"""``POST /v1/completions``: OpenAI's legacy text completions as a door onto the pipeline.

The prompt is sent as one user message of a chat request (every model behind the gateway is
served through its chat call, and every stage runs as on ``/v1/chat/completions``); the answer
and each chunk of a stream come back as ``text_completion`` objects. ``max_tokens`` defaults
to 16, as OpenAI's and vLLM's legacy endpoints do.

``logprobs`` (0 to 5) asks the chat call for ``logprobs`` with that many ``top_logprobs``; the
chat answer's log probabilities come back in the legacy shape (``tokens``, ``token_logprobs``,
``top_logprobs`` as token -> log probability, the sampled token among them, and
``text_offset`` in the completion's text), in each chunk of a stream too. A deployment that
cannot give them refuses the chat fields as it would on ``/v1/chat/completions``.

What a chat call cannot give is a 400 naming it: ``suffix``, ``echo``, ``best_of`` above 1,
and more than one prompt (or token ids) in one request.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from stackyard.errors import APIError, invalid_request
from stackyard.gateway.doors.chat import WANTS_USAGE, ChatDoor
from stackyard.gateway.pipeline.exchange import Body, Event, Exchange
from stackyard.gateway.wire import validate_chat
from stackyard.server.http import Response

#: OpenAI's legacy default: a completion of at most 16 tokens.
DEFAULT_MAX_TOKENS = 16
#: Fields carried to the chat request as they are.
CARRIED = (
    "model",
    "max_tokens",
    "temperature",
    "top_p",
    "n",
    "stream",
    "stream_options",
    "stop",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "seed",
    "user",
)
#: ``ex.state`` key: when the answer was made (``created``), and its id.
MADE = "completions.made"
#: ``ex.state`` key: per choice of a stream, where its next token starts in its text.
OFFSETS = "completions.offsets"
#: OpenAI's legacy bound on ``logprobs``.
MAX_LOGPROBS = 5


def _unsupported(param: str, why: str) -> APIError:
    return APIError(
        400,
        f"'{param}' is not supported on /v1/completions here: {why}.",
        type="invalid_request_error",
        param=param,
        code="unsupported_parameter",
    )


def chat_request(body: Body) -> Body:
    """A legacy completions request as a chat request (a 400 names what cannot be carried)."""
    for name in body:
        if name in ("prompt", "suffix", "echo", "best_of", "logprobs"):
            continue
        if name not in CARRIED:
            raise invalid_request(f"Unrecognized request argument: '{name}'.", param=name)
    if body.get("suffix"):
        raise _unsupported("suffix", "insertion (fill in the middle) is not offered")
    if body.get("echo"):
        raise _unsupported("echo", "the prompt is not echoed back")
    best_of = body.get("best_of")
    if best_of is not None and best_of != 1:
        raise _unsupported("best_of", "only 1 is served; use n for several completions")
    logprobs = body.get("logprobs")
    if logprobs is not None and (
        not isinstance(logprobs, int)
        or isinstance(logprobs, bool)
        or not 0 <= logprobs <= MAX_LOGPROBS
    ):
        raise invalid_request(
            f"'logprobs' must be an integer from 0 to {MAX_LOGPROBS}.", param="logprobs"
        )
    if "prompt" not in body:
        raise invalid_request("Missing required parameter: 'prompt'.", param="prompt")
    prompt = body["prompt"]
    if isinstance(prompt, list):
        if len(prompt) == 1 and isinstance(prompt[0], str):
            prompt = prompt[0]
        else:
            raise _unsupported(
                "prompt", "send one prompt (a string) per request; token ids are not taken"
            )
    if not isinstance(prompt, str):
        raise invalid_request("'prompt' must be a string.", param="prompt")
    chat: Body = {k: body[k] for k in CARRIED if k in body}
    chat["messages"] = [{"role": "user", "content": prompt}]
    if chat.get("max_tokens") is None:
        chat["max_tokens"] = DEFAULT_MAX_TOKENS
    if logprobs is not None:
        chat["logprobs"] = True
        chat["top_logprobs"] = logprobs
    return chat


def legacy_logprobs(logprobs: Body | None, offset: int = 0) -> Body | None:
    """A chat choice's ``logprobs`` in the legacy shape; ``offset`` is where its first token
    starts in the completion's text (past the tokens of a stream's earlier chunks)."""
    if not logprobs:
        return None
    out: Body = {"tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": []}
    for entry in logprobs.get("content") or ():
        token = entry.get("token", "")
        top = {t.get("token", ""): t.get("logprob") for t in entry.get("top_logprobs") or ()}
        top.setdefault(token, entry.get("logprob"))  # OpenAI's: the sampled token is among them
        out["tokens"].append(token)
        out["token_logprobs"].append(entry.get("logprob"))
        out["top_logprobs"].append(top)
        out["text_offset"].append(offset)
        offset += len(token)
    return out


def _choice(choice: Body, text: str | None, offset: int = 0) -> Body:
    return {
        "text": text or "",
        "index": choice.get("index", 0),
        "logprobs": legacy_logprobs(choice.get("logprobs"), offset),
        "finish_reason": choice.get("finish_reason"),
    }


def completion(answer: Body, made: tuple[str, int]) -> Body:
    """A chat completion as a ``text_completion``."""
    choices = [
        _choice(c, (c.get("message") or {}).get("content")) for c in answer.get("choices") or ()
    ]
    for choice in choices:  # a tool call or a refusal is no legacy finish reason
        if choice["finish_reason"] not in ("stop", "length", "content_filter"):
            choice["finish_reason"] = "stop"
    out: Body = {
        "id": made[0],
        "object": "text_completion",
        "created": made[1],
        "model": answer.get("model", ""),
        "choices": choices,
    }
    if answer.get("usage") is not None:
        out["usage"] = answer["usage"]
    if answer.get("system_fingerprint"):
        out["system_fingerprint"] = answer["system_fingerprint"]
    return out


def chunk(event: Body, made: tuple[str, int], offsets: dict[int, int] | None = None) -> Body:
    """A chat chunk as a ``text_completion`` chunk. ``offsets`` (per choice, where its next
    token starts in its text) is read and moved on past this chunk's tokens."""
    offsets = {} if offsets is None else offsets
    choices = []
    for c in event.get("choices") or ():
        index = c.get("index", 0)
        converted = _choice(c, (c.get("delta") or {}).get("content"), offsets.get(index, 0))
        if converted["logprobs"] is not None:
            offsets[index] = offsets.get(index, 0) + sum(
                len(t) for t in converted["logprobs"]["tokens"]
            )
        choices.append(converted)
    out: Body = {
        "id": made[0],
        "object": "text_completion",
        "created": made[1],
        "model": event.get("model", ""),
        "choices": choices,
    }
    for choice in out["choices"]:
        reason = choice["finish_reason"]
        if reason is not None and reason not in ("stop", "length", "content_filter"):
            choice["finish_reason"] = "stop"
    if "usage" in event:
        out["usage"] = event["usage"]
    return out


class CompletionsDoor(ChatDoor):
    endpoint = "completions"
    operation = "completions"
    #: Every stage of the chat door but the JSON check (a legacy request asks for no format)
    #: and registry prompts (``prompt`` is the legacy API's own text here).
    stages = ChatDoor.stages - {"json_output", "prompt"}
    options = ("cache", "rag")

    async def parse(self, ex: Exchange) -> None:
        ex.body = chat_request(ex.body)
        ex.state[MADE] = (f"cmpl-{secrets.token_hex(12)}", int(time.time()))

    def validate(self, ex: Exchange) -> bool:
        parsed = validate_chat(ex.body)
        options = parsed.stream_options
        ex.state[WANTS_USAGE] = bool(options and options.include_usage)
        return bool(parsed.stream)

    def render(self, ex: Exchange, answer: Body, headers: list[tuple[bytes, bytes]]) -> Response:
        out = completion(answer, ex.state[MADE])
        if "citations" in answer:
            out["citations"] = answer["citations"]
        return Response.json(out, headers=headers)

    def encode(self, ex: Exchange, event: Event) -> bytes | None:
        converted: dict[str, Any] = chunk(event, ex.state[MADE], ex.state.setdefault(OFFSETS, {}))
        if "citations" in event:
            converted["citations"] = event["citations"]
        return super().encode(ex, converted)


COMPLETIONS = CompletionsDoor()
