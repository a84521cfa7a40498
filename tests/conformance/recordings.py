"""What each upstream answers in the conformance cases, and the tools they use.

The upstream answers ("recordings") are written from the providers' API references: OpenAI's
``chat.completion`` and ``chat.completion.chunk`` objects (SSE ``data:`` lines ending in
``[DONE]``; a mid-stream failure is a ``data: {"error": ...}`` line), and Anthropic's Message
object and its stream events (``message_start``, ``content_block_start``,
``content_block_delta`` with ``text_delta``/``input_json_delta``, ``content_block_stop``,
``message_delta`` with cumulative usage, ``message_stop``, ``ping``, ``error``).

Recorded ids (``chatcmpl-rec``, ``call_rec1``, ``msg_rec``, ``toolu_rec1``) must reach the
client untouched wherever the client's format has a place for them.
"""

from __future__ import annotations

from typing import Any

from tests.fakes.replay_upstream import Reply

WEATHER = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
}
TIME = {
    "type": "object",
    "properties": {"timezone": {"type": "string"}},
    "required": ["timezone"],
}
ANSWER_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
    "required": ["city", "country"],
}

OPENAI_TOOLS = [
    {
        "type": "function",
        "function": {"name": "get_weather", "description": "Weather", "parameters": WEATHER},
    },
    {
        "type": "function",
        "function": {"name": "get_time", "description": "Local time", "parameters": TIME},
    },
]
ANTHROPIC_TOOLS = [
    {"name": "get_weather", "description": "Weather", "input_schema": WEATHER},
    {"name": "get_time", "description": "Local time", "input_schema": TIME},
]


# -- OpenAI recordings -------------------------------------------------------------------------


def oa_completion(message: dict[str, Any], finish: str, usage: tuple[int, int] = (12, 5)) -> Reply:
    return Reply(
        json={
            "id": "chatcmpl-rec",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": "gpt-4o-mini-2024-07-18",
            "system_fingerprint": "fp_rec",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "refusal": None, **message},
                    "logprobs": None,
                    "finish_reason": finish,
                }
            ],
            "usage": {
                "prompt_tokens": usage[0],
                "completion_tokens": usage[1],
                "total_tokens": sum(usage),
            },
        }
    )


def oa_chunk(delta: dict[str, Any], finish: str | None = None) -> tuple[None, dict[str, Any]]:
    return None, {
        "id": "chatcmpl-rec",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "gpt-4o-mini-2024-07-18",
        "system_fingerprint": "fp_rec",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        "usage": None,
    }


def oa_usage(prompt: int = 12, completion: int = 5) -> tuple[None, dict[str, Any]]:
    _, chunk = oa_chunk({})
    chunk["choices"] = []
    chunk["usage"] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    return None, chunk


def oa_stream(*events: tuple[None, Any], done: bool = True) -> Reply:
    return Reply(sse=[*events, *([(None, "[DONE]")] if done else [])])


def oa_text_stream(
    pieces: list[str], finish: str = "stop", usage: tuple[int, int] = (12, 5)
) -> Reply:
    return oa_stream(
        oa_chunk({"role": "assistant", "content": "", "refusal": None}),
        *(oa_chunk({"content": p}) for p in pieces),
        oa_chunk({}, finish),
        oa_usage(*usage),
    )


OA_TOOL_CALLS = [
    {
        "id": "call_rec1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
    },
    {
        "id": "call_rec2",
        "type": "function",
        "function": {"name": "get_time", "arguments": '{"timezone":"Asia/Tokyo"}'},
    },
]

OA_TOOL_STREAM = oa_stream(
    oa_chunk({"role": "assistant", "content": None, "refusal": None}),
    oa_chunk(
        {
            "tool_calls": [
                {
                    "index": 0,
                    "id": "call_rec1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": ""},
                }
            ]
        }
    ),
    oa_chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}),
    oa_chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}),
    oa_chunk(
        {
            "tool_calls": [
                {
                    "index": 1,
                    "id": "call_rec2",
                    "type": "function",
                    "function": {"name": "get_time", "arguments": ""},
                }
            ]
        }
    ),
    oa_chunk({"tool_calls": [{"index": 1, "function": {"arguments": '{"timezone":'}}]}),
    oa_chunk({"tool_calls": [{"index": 1, "function": {"arguments": '"Asia/Tokyo"}'}}]}),
    oa_chunk({}, "tool_calls"),
    oa_usage(40, 30),
)

OA_FORCED_TOOL = [
    {
        "id": "call_rec1",
        "type": "function",
        "function": {"name": "record_answer", "arguments": '{"city":"Paris","country":"France"}'},
    },
]

OA_MID_STREAM_ERROR = oa_stream(
    oa_chunk({"role": "assistant", "content": "", "refusal": None}),
    oa_chunk({"content": "The answer"}),
    (
        None,
        {
            "error": {
                "message": "The server had an error while processing your request.",
                "type": "server_error",
                "param": None,
                "code": None,
            }
        },
    ),
    done=False,
)


# -- Anthropic recordings ------------------------------------------------------------------------


def an_message(
    content: list[dict[str, Any]],
    stop: str,
    usage: dict[str, int] | None = None,
    stop_sequence: str | None = None,
) -> Reply:
    return Reply(
        json={
            "id": "msg_rec",
            "type": "message",
            "role": "assistant",
            "model": "claude-haiku-4-5-20251001",
            "content": content,
            "stop_reason": stop,
            "stop_sequence": stop_sequence,
            "usage": usage or {"input_tokens": 12, "output_tokens": 5},
        }
    )


def an_start(input_tokens: int = 12, **cache: int) -> tuple[str, dict[str, Any]]:
    return "message_start", {
        "type": "message_start",
        "message": {
            "id": "msg_rec",
            "type": "message",
            "role": "assistant",
            "model": "claude-haiku-4-5-20251001",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": 1, **cache},
        },
    }


def an_block_start(index: int, block: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return "content_block_start", {
        "type": "content_block_start",
        "index": index,
        "content_block": block,
    }


def an_text(index: int, text: str) -> tuple[str, dict[str, Any]]:
    return "content_block_delta", {
        "type": "content_block_delta",
        "index": index,
        "delta": {"type": "text_delta", "text": text},
    }


def an_json(index: int, partial: str) -> tuple[str, dict[str, Any]]:
    return "content_block_delta", {
        "type": "content_block_delta",
        "index": index,
        "delta": {"type": "input_json_delta", "partial_json": partial},
    }


def an_block_stop(index: int) -> tuple[str, dict[str, Any]]:
    return "content_block_stop", {"type": "content_block_stop", "index": index}


def an_end(stop: str, output_tokens: int = 5) -> list[tuple[str, dict[str, Any]]]:
    return [
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": None},
                "usage": {"output_tokens": output_tokens},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]


PING = ("ping", {"type": "ping"})


def an_text_stream(
    pieces: list[str], stop: str = "end_turn", output_tokens: int = 5, **cache: int
) -> Reply:
    return Reply(
        sse=[
            an_start(**cache),
            an_block_start(0, {"type": "text", "text": ""}),
            PING,
            *(an_text(0, p) for p in pieces),
            an_block_stop(0),
            *an_end(stop, output_tokens),
        ]
    )


AN_TOOL_USES = [
    {"type": "tool_use", "id": "toolu_rec1", "name": "get_weather", "input": {"city": "Paris"}},
    {
        "type": "tool_use",
        "id": "toolu_rec2",
        "name": "get_time",
        "input": {"timezone": "Asia/Tokyo"},
    },
]

AN_TOOL_STREAM = Reply(
    sse=[
        an_start(40),
        an_block_start(0, {"type": "text", "text": ""}),
        an_text(0, "Checking both."),
        an_block_stop(0),
        an_block_start(
            1, {"type": "tool_use", "id": "toolu_rec1", "name": "get_weather", "input": {}}
        ),
        an_json(1, ""),
        an_json(1, '{"city": '),
        an_json(1, '"Paris"}'),
        an_block_stop(1),
        an_block_start(
            2, {"type": "tool_use", "id": "toolu_rec2", "name": "get_time", "input": {}}
        ),
        an_json(2, '{"timezone": "Asia/Tokyo"}'),
        an_block_stop(2),
        *an_end("tool_use", 30),
    ]
)


def an_forced_tool(name: str) -> tuple[Reply, Reply]:
    """A forced tool's answer, whole and streamed."""
    block = {
        "type": "tool_use",
        "id": "toolu_rec1",
        "name": name,
        "input": {"city": "Paris", "country": "France"},
    }
    whole = an_message([block], "tool_use", {"input_tokens": 30, "output_tokens": 12})
    stream = Reply(
        sse=[
            an_start(30),
            an_block_start(0, {**block, "input": {}}),
            an_json(0, '{"city": "Paris", '),
            an_json(0, '"country": "France"}'),
            an_block_stop(0),
            *an_end("tool_use", 12),
        ]
    )
    return whole, stream


AN_MID_STREAM_ERROR = Reply(
    sse=[
        an_start(),
        an_block_start(0, {"type": "text", "text": ""}),
        an_text(0, "The answer"),
        (
            "error",
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
        ),
    ]
)
