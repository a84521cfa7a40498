"""The conformance cases: what each client sends through each door, with the upstream
recordings (``recordings.py``) that answer it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.conformance.recordings import (
    AN_MID_STREAM_ERROR,
    AN_TOOL_STREAM,
    AN_TOOL_USES,
    ANSWER_SCHEMA,
    ANTHROPIC_TOOLS,
    OA_FORCED_TOOL,
    OA_MID_STREAM_ERROR,
    OA_TOOL_CALLS,
    OA_TOOL_STREAM,
    OPENAI_TOOLS,
    an_forced_tool,
    an_message,
    an_text_stream,
    oa_chunk,
    oa_completion,
    oa_stream,
    oa_text_stream,
    oa_usage,
)
from tests.fakes.replay_upstream import Reply

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
