"""A cached answer, and its replay: whole, or as the stream of chunks the client would have
seen."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from stackyard.observability.capture import ChunkCapture


@dataclass(frozen=True, slots=True)
class Candidate:
    """A cached question near a new one: its entry's key, cosine similarity and text."""

    key: str
    similarity: float
    question: str


@dataclass
class Entry:
    id: str
    key: str
    namespace: str
    model: str
    created: float
    expires: float
    #: The upstream's cost of the original answer (a hit saves this much).
    cost_usd: float
    usage: dict[str, Any] | None
    #: The whole completion (the original was not streamed)...
    response: dict[str, Any] | None = None
    #: ...or the chunks as the upstream sent them (the original was streamed).
    chunks: list[dict[str, Any]] | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Entry:
        return cls(**data)

    def completion(self) -> dict[str, Any]:
        if self.response is not None:
            return self.response
        capture = ChunkCapture()
        for chunk in self.chunks or ():
            capture.feed(chunk)
        result = capture.result(self.usage)
        result["created"] = (self.chunks or [{}])[0].get("created", int(self.created))
        result["system_fingerprint"] = (self.chunks or [{}])[0].get("system_fingerprint")
        return result

    def stream(self) -> list[dict[str, Any]]:
        """The chunks to send: the original ones, or a completion cut into chunks (a role
        chunk, one content chunk per choice, the finish, and a usage chunk)."""
        if self.chunks is not None:
            return [dict(c) for c in self.chunks]
        response = self.response or {}
        base = {
            "id": response.get("id"),
            "object": "chat.completion.chunk",
            "created": response.get("created", int(self.created)),
            "model": response.get("model"),
            "system_fingerprint": response.get("system_fingerprint"),
        }
        out = []
        for choice in response.get("choices") or ():
            index = choice.get("index", 0)
            message = choice.get("message") or {}
            out.append(
                {
                    **base,
                    "choices": [
                        {
                            "index": index,
                            "delta": {"role": "assistant", "content": ""},
                            "logprobs": None,
                            "finish_reason": None,
                        }
                    ],
                }
            )
            delta: dict[str, Any] = {}
            if message.get("content"):
                delta["content"] = message["content"]
            if message.get("tool_calls"):
                delta["tool_calls"] = [
                    {"index": i, **call} for i, call in enumerate(message["tool_calls"])
                ]
            if delta:
                out.append(
                    {
                        **base,
                        "choices": [
                            {
                                "index": index,
                                "delta": delta,
                                "logprobs": None,
                                "finish_reason": None,
                            }
                        ],
                    }
                )
            out.append(
                {
                    **base,
                    "choices": [
                        {
                            "index": index,
                            "delta": {},
                            "logprobs": None,
                            "finish_reason": choice.get("finish_reason") or "stop",
                        }
                    ],
                }
            )
        if self.usage:
            out.append({**base, "choices": [], "usage": self.usage})
        return out
