"""Replaying an entry: a completion as chunks, and chunks as a completion."""

from __future__ import annotations

from stackyard.cache.entry import Entry

USAGE = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
COMPLETION = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 100,
    "model": "m-1",
    "system_fingerprint": None,
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hi there"},
            "finish_reason": "stop",
        }
    ],
    "usage": USAGE,
}


def test_a_completion_streams_as_role_content_finish_and_usage() -> None:
    entry = Entry("cache_1", "k", "default", "m", 100.0, 200.0, 0.0, USAGE, response=COMPLETION)
    chunks = entry.stream()
    assert [c["object"] for c in chunks] == ["chat.completion.chunk"] * 4
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert chunks[1]["choices"][0]["delta"] == {"content": "Hi there"}
    assert chunks[2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[3] == {**chunks[3], "choices": [], "usage": USAGE}
    assert all(c["id"] == "chatcmpl-1" and c["model"] == "m-1" for c in chunks)
    assert entry.completion() is COMPLETION


def test_chunks_replay_as_they_were_and_assemble_into_a_completion() -> None:
    chunks = Entry("c", "k", "d", "m", 1.0, 2.0, 0.0, USAGE, response=COMPLETION).stream()
    entry = Entry("cache_2", "k", "default", "m", 100.0, 200.0, 0.0, USAGE, chunks=chunks)
    assert entry.stream() == chunks
    completion = entry.completion()
    assert completion["choices"][0]["message"]["content"] == "Hi there"
    assert completion["choices"][0]["finish_reason"] == "stop"
    assert completion["usage"] == USAGE
