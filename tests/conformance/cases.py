"""The conformance cases: what each client sends, and what each upstream answers.

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

from dataclasses import dataclass, field
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


# -- the cases ---------------------------------------------------------------------------------


@dataclass
class Case:
    name: str
    #: The client's request for each door, without ``model``.
    openai: dict[str, Any]
    anthropic: dict[str, Any]
    #: The upstream's answer per back-end format ("openai" or "anthropic"), per door where it
    #: differs (the JSON case: a response_format on one door, a forced tool on the other).
    replies: dict[str, Reply] = field(default_factory=dict)
    door_replies: dict[tuple[str, str], Reply] = field(default_factory=dict)

    @property
    def stream(self) -> bool:
        return bool(self.openai.get("stream"))

    def reply(self, door: str, fmt: str) -> Reply:
        return self.door_replies.get((door, fmt)) or self.replies[fmt]


HELLO = [{"role": "user", "content": "Hello"}]
MULTI_OA = [
    {"role": "user", "content": "What is the capital of France?"},
    {"role": "assistant", "content": "Paris."},
    {"role": "user", "content": "And of Japan?"},
]
MULTI_AN = MULTI_OA
TOOLS_Q = "What is the weather in Paris and the time in Tokyo?"
RESULTS_OA = [
    {"role": "user", "content": TOOLS_Q},
    {"role": "assistant", "content": None, "tool_calls": OA_TOOL_CALLS},
    {"role": "tool", "tool_call_id": "call_rec1", "content": "Sunny, 21 C"},
    {"role": "tool", "tool_call_id": "call_rec2", "content": "12:00"},
]
RESULTS_AN = [
    {"role": "user", "content": TOOLS_Q},
    {"role": "assistant", "content": AN_TOOL_USES},
    {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "toolu_rec1", "content": "Sunny, 21 C"},
            {"type": "tool_result", "tool_use_id": "toolu_rec2", "content": "12:00"},
        ],
    },
]
JSON_FORMAT = {
    "type": "json_schema",
    "json_schema": {"name": "answer", "schema": ANSWER_SCHEMA, "strict": True},
}
RECORD_TOOL = {
    "name": "record_answer",
    "description": "Record the answer",
    "input_schema": ANSWER_SCHEMA,
}
RESULT_TEXT = "It is sunny in Paris; it is noon in Tokyo."

FORCED_JSON_WHOLE, FORCED_JSON_STREAM = an_forced_tool("json_output")
FORCED_RECORD_WHOLE, FORCED_RECORD_STREAM = an_forced_tool("record_answer")


def _pair(
    name: str,
    openai: dict[str, Any],
    anthropic: dict[str, Any],
    whole: dict[str, Reply],
    streamed: dict[str, Reply],
    door_whole: dict[tuple[str, str], Reply] | None = None,
    door_streamed: dict[tuple[str, str], Reply] | None = None,
) -> list[Case]:
    return [
        Case(name, {**openai}, {**anthropic}, whole, door_whole or {}),
        Case(
            f"{name}_stream",
            {**openai, "stream": True, "stream_options": {"include_usage": True}},
            {**anthropic, "stream": True},
            streamed,
            door_streamed or {},
        ),
    ]


CASES: list[Case] = [
    *_pair(
        "text",
        {"messages": HELLO},
        {"messages": HELLO, "max_tokens": 256},
        {
            "openai": oa_completion({"content": "Hi there!"}, "stop"),
            "anthropic": an_message(
                [{"type": "text", "text": "Hi there!"}],
                "end_turn",
                {
                    "input_tokens": 10,
                    "cache_read_input_tokens": 5,
                    "cache_creation_input_tokens": 2,
                    "output_tokens": 4,
                },
            ),
        },
        {
            "openai": oa_text_stream(["Hi", " there!"]),
            "anthropic": an_text_stream(
                ["Hi", " there!"],
                output_tokens=4,
                cache_read_input_tokens=5,
                cache_creation_input_tokens=2,
            ),
        },
    ),
    *_pair(
        "system",
        {
            "messages": [{"role": "system", "content": "You are terse."}, *HELLO],
            "temperature": 1.5,
            "top_p": 0.9,
            "user": "u-42",
        },
        {
            "system": [{"type": "text", "text": "You are terse."}],
            "messages": HELLO,
            "max_tokens": 64,
            "metadata": {"user_id": "u-42"},
        },
        {
            "openai": oa_completion({"content": "Hi."}, "stop"),
            "anthropic": an_message([{"type": "text", "text": "Hi."}], "end_turn"),
        },
        {"openai": oa_text_stream(["Hi."]), "anthropic": an_text_stream(["Hi."])},
    ),
    *_pair(
        "multi_turn",
        {"messages": MULTI_OA, "stop": ["\n\n"]},
        {"messages": MULTI_AN, "max_tokens": 64, "stop_sequences": ["\n\n"]},
        {
            "openai": oa_completion({"content": "Tokyo."}, "stop"),
            "anthropic": an_message([{"type": "text", "text": "Tokyo."}], "end_turn"),
        },
        {"openai": oa_text_stream(["Tok", "yo."]), "anthropic": an_text_stream(["Tok", "yo."])},
    ),
    *_pair(
        "parallel_tools",
        {
            "messages": [{"role": "user", "content": TOOLS_Q}],
            "tools": OPENAI_TOOLS,
            "tool_choice": "auto",
        },
        {
            "messages": [{"role": "user", "content": TOOLS_Q}],
            "max_tokens": 256,
            "tools": ANTHROPIC_TOOLS,
            "tool_choice": {"type": "auto"},
        },
        {
            "openai": oa_completion(
                {"content": None, "tool_calls": OA_TOOL_CALLS}, "tool_calls", (40, 30)
            ),
            "anthropic": an_message(
                [{"type": "text", "text": "Checking both."}, *AN_TOOL_USES],
                "tool_use",
                {"input_tokens": 40, "output_tokens": 30},
            ),
        },
        {"openai": OA_TOOL_STREAM, "anthropic": AN_TOOL_STREAM},
    ),
    *_pair(
        "tool_results",
        {"messages": RESULTS_OA, "tools": OPENAI_TOOLS},
        {"messages": RESULTS_AN, "max_tokens": 256, "tools": ANTHROPIC_TOOLS},
        {
            "openai": oa_completion({"content": RESULT_TEXT}, "stop", (60, 12)),
            "anthropic": an_message(
                [{"type": "text", "text": RESULT_TEXT}],
                "end_turn",
                {"input_tokens": 60, "output_tokens": 12},
            ),
        },
        {
            "openai": oa_text_stream(
                ["It is sunny in Paris;", " it is noon in Tokyo."], usage=(60, 12)
            ),
            "anthropic": an_text_stream(
                ["It is sunny in Paris;", " it is noon in Tokyo."], output_tokens=12
            ),
        },
    ),
    *_pair(
        "json_schema",
        {
            "messages": [{"role": "user", "content": "Where is the Eiffel Tower?"}],
            "response_format": JSON_FORMAT,
        },
        {
            "messages": [{"role": "user", "content": "Where is the Eiffel Tower?"}],
            "max_tokens": 256,
            "tools": [RECORD_TOOL],
            "tool_choice": {"type": "tool", "name": "record_answer"},
        },
        {},
        {},
        door_whole={
            ("openai", "openai"): oa_completion(
                {"content": '{"city":"Paris","country":"France"}'}, "stop", (30, 12)
            ),
            ("openai", "anthropic"): FORCED_JSON_WHOLE,
            ("anthropic", "openai"): oa_completion(
                {"content": None, "tool_calls": OA_FORCED_TOOL}, "tool_calls", (30, 12)
            ),
            ("anthropic", "anthropic"): FORCED_RECORD_WHOLE,
        },
        door_streamed={
            ("openai", "openai"): oa_text_stream(
                ['{"city":"Paris",', '"country":"France"}'], usage=(30, 12)
            ),
            ("openai", "anthropic"): FORCED_JSON_STREAM,
            ("anthropic", "openai"): oa_stream(
                oa_chunk({"role": "assistant", "content": None, "refusal": None}),
                oa_chunk(
                    {
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "call_rec1",
                                "type": "function",
                                "function": {"name": "record_answer", "arguments": ""},
                            }
                        ]
                    }
                ),
                oa_chunk(
                    {"tool_calls": [{"index": 0, "function": {"arguments": '{"city":"Paris",'}}]}
                ),
                oa_chunk(
                    {"tool_calls": [{"index": 0, "function": {"arguments": '"country":"France"}'}}]}
                ),
                oa_chunk({}, "tool_calls"),
                oa_usage(30, 12),
            ),
            ("anthropic", "anthropic"): FORCED_RECORD_STREAM,
        },
    ),
    *_pair(
        "max_tokens",
        {"messages": [{"role": "user", "content": "Count to ten."}], "max_tokens": 5},
        {"messages": [{"role": "user", "content": "Count to ten."}], "max_tokens": 5},
        {
            "openai": oa_completion({"content": "1, 2, 3"}, "length", (12, 5)),
            "anthropic": an_message([{"type": "text", "text": "1, 2, 3"}], "max_tokens"),
        },
        {
            "openai": oa_text_stream(["1,", " 2,", " 3"], finish="length"),
            "anthropic": an_text_stream(["1,", " 2,", " 3"], stop="max_tokens"),
        },
    ),
    Case(
        "error_mid_stream",
        {"messages": HELLO, "stream": True},
        {"messages": HELLO, "max_tokens": 64, "stream": True},
        {"openai": OA_MID_STREAM_ERROR, "anthropic": AN_MID_STREAM_ERROR},
    ),
]
