"""Secrets in what is about to leave: provider API keys, cloud credentials, private keys, JSON
Web Tokens and passwords in connection strings. A request carrying one can be refused (a 400
naming the detector and where it was found), or sent with the secret replaced; an answer
carrying one reaches the client with the secret replaced, streams included."""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

from stackyard.guardrails.pii import API_KEY

PRIVATE_KEY = re.compile(
    r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY( BLOCK)?-----"
)
JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")
AWS_SECRET = re.compile(
    r"(?i)aws.{0,20}(?:secret|key).{0,20}[\"':= ]+[A-Za-z0-9/+=]{40}(?![A-Za-z0-9/+=])"
)
#: A password in a URL; not a placeholder (${DB_PASSWORD}, <password>, {password}, %s, ***).
CONNECTION = re.compile(
    r"\b[a-z][a-z0-9+.-]{1,20}://[^\s:/@]{1,100}:"
    r"(?!\$|<|\{|%s|%\(|\*{3})([^\s@/]{3,100})@[^\s/]+"
)
SLACK_WEBHOOK = re.compile(r"https://hooks\.slack\.com/services/[A-Za-z0-9/]{20,}")

DETECTORS: list[tuple[str, re.Pattern[str]]] = [
    ("private_key", PRIVATE_KEY),
    ("api_key", API_KEY),
    ("jwt", JWT),
    ("aws_secret", AWS_SECRET),
    ("connection_string_password", CONNECTION),
    ("slack_webhook", SLACK_WEBHOOK),
]


@dataclass(frozen=True, slots=True)
class Secret:
    detector: str
    where: str  # e.g. "messages[1].content"
    start: int
    end: int


def scan_text(text: str, where: str) -> list[Secret]:
    found = []
    for name, pattern in DETECTORS:
        for match in pattern.finditer(text):
            found.append(Secret(name, where, match.start(), match.end()))
    return found


def scan_request(body: dict[str, Any]) -> list[Secret]:
    """Every secret in a chat request's messages (text parts, tool results, tool-call
    arguments)."""
    found: list[Secret] = []
    for index, message in enumerate(body.get("messages") or ()):
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, str):
            found += scan_text(content, f"messages[{index}].content")
        elif isinstance(content, list):
            for part_index, part in enumerate(content):
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    where = f"messages[{index}].content[{part_index}].text"
                    found += scan_text(part["text"], where)
        for call_index, call in enumerate(message.get("tool_calls") or ()):
            arguments = (
                (call.get("function") or {}).get("arguments") if isinstance(call, dict) else None
            )
            if isinstance(arguments, str):
                where = f"messages[{index}].tool_calls[{call_index}].function.arguments"
                found += scan_text(arguments, where)
    return found


def scan_messages(body: dict[str, Any]) -> list[Secret]:
    """Every secret in an Anthropic Messages request (system, text, tool results, tool
    inputs); ``where`` is ``messages``."""
    from stackyard.guardrails.anthropic_shape import change_request

    found: list[Secret] = []

    def look(text: str) -> str:
        found.extend(scan_text(text, "messages"))
        return text

    change_request(body, look)
    return found


def scan_inputs(body: dict[str, Any]) -> list[Secret]:
    """Every secret in an embeddings request's text inputs."""
    value = body.get("input")
    if isinstance(value, str):
        return scan_text(value, "input")
    found: list[Secret] = []
    for index, item in enumerate(value if isinstance(value, list) else ()):
        if isinstance(item, str):
            found += scan_text(item, f"input[{index}]")
    return found


def mask_inputs(body: dict[str, Any]) -> dict[str, Any]:
    from stackyard.guardrails.redaction import change_inputs

    return change_inputs(body, mask)


def mask(text: str) -> str:
    """The text with every secret replaced by ``[SECRET]``."""
    for _, pattern in DETECTORS:
        text = pattern.sub("[SECRET]", text)
    return text


def mask_request(body: dict[str, Any]) -> dict[str, Any]:
    """A copy of a chat request with every secret in its messages replaced."""
    from stackyard.guardrails.redaction import change_texts

    return change_texts(body, mask)


#: A whole PEM private key, header to footer (in answers the key itself must go, not only its
#: header).
PEM_BLOCK = re.compile(
    r"-----BEGIN (?:[A-Z]+ )*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?"
    r"-----END (?:[A-Z]+ )*PRIVATE KEY(?: BLOCK)?-----"
)
PEM_BEGIN = "-----BEGIN"
OUTPUT_DETECTORS: list[tuple[str, re.Pattern[str]]] = [
    ("private_key", PEM_BLOCK),
    *((name, pattern) for name, pattern in DETECTORS if name != "private_key"),
]
#: At least this much of a stream's tail is held back until more text shows whether it
#: starts a secret (a cloud credential's name and value fit in it).
WINDOW = 128
#: Held text past this is released (masked) even if it might still grow: a bound on delay.
MOST_HELD = 16_384
MASK = "[SECRET]"


def _spans(text: str) -> list[tuple[int, int]]:
    """Where secrets are in ``text``, overlapping ones merged."""
    found = sorted(
        (match.start(), match.end())
        for _, pattern in OUTPUT_DETECTORS
        for match in pattern.finditer(text)
    )
    merged: list[tuple[int, int]] = []
    for start, end in found:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


class SecretWindow:
    """Masks secrets in text that arrives in pieces (a :class:`TextStream`): the output is the
    same however the text is split. Text that may still be part of a secret is held back:
    the last ``WINDOW`` characters, the whole of a word longer than that, a secret that
    reaches the end of what has arrived (it may grow), and an unfinished PEM block."""

    def __init__(self) -> None:
        self.pending = ""
        self.masked = 0

    def feed(self, piece: str) -> str:
        text = self.pending + piece
        if len(text) > MOST_HELD:
            self.pending = ""
            return self._mask(text, _spans(text))
        spans = _spans(text)
        cut = len(text) - WINDOW
        if cut > 0:
            word = max(text.rfind(" ", 0, cut), text.rfind("\n", 0, cut)) + 1
            if not any(ch.isspace() for ch in text[cut:]):  # one long word: hold all of it
                cut = word
        begin = text.rfind(PEM_BEGIN)
        if begin != -1 and not any(s <= begin < e for s, e in spans):
            cut = min(cut, begin)
        for start, end in reversed(spans):
            if end >= len(text) or start < cut < end:
                cut = min(cut, start)
        if cut <= 0:
            self.pending = text
            return ""
        self.pending = text[cut:]
        return self._mask(text[:cut], [(s, e) for s, e in spans if e <= cut])

    def flush(self) -> str:
        text, self.pending = self.pending, ""
        spans = _spans(text)
        begin = text.rfind(PEM_BEGIN)
        if begin != -1 and not any(s <= begin < e for s, e in spans):
            spans.append((begin, len(text)))  # a key cut short: mask what came of it
        return self._mask(text, spans)

    def _mask(self, text: str, spans: list[tuple[int, int]]) -> str:
        if not spans:
            return text
        self.masked += len(spans)
        out, last = [], 0
        for start, end in spans:
            out.append(text[last:start])
            out.append(MASK)
            last = end
        out.append(text[last:])
        return "".join(out)


def mask_answer(text: str) -> tuple[str, int]:
    """A whole answer's text with every secret masked, and how many were."""
    window = SecretWindow()
    masked = window.feed(text) + window.flush()
    return masked, window.masked


class Masker:
    """A text change that masks secrets in whole answers and counts them."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, text: str) -> str:
        masked, found = mask_answer(text)
        self.count += found
        return masked


def mask_response(result: dict[str, Any]) -> int:
    """Mask secrets in a chat completion's choices (in place); return how many."""
    from stackyard.guardrails.redaction import change_response

    masker = Masker()
    change_response(result, masker)
    return masker.count


class MaskedStream:
    """A chat stream with secrets masked in its text and tool-call arguments; ``masked``
    counts them once the stream has ended."""

    def __init__(self) -> None:
        from stackyard.guardrails.redaction import ChunkTransformer

        self.windows: list[SecretWindow] = []
        self.transformer = ChunkTransformer(self._window)

    def _window(self) -> SecretWindow:
        window = SecretWindow()
        self.windows.append(window)
        return window

    @property
    def masked(self) -> int:
        return sum(w.masked for w in self.windows)

    async def wrap(
        self, chunks: AsyncGenerator[dict[str, Any], None]
    ) -> AsyncGenerator[dict[str, Any], None]:
        from stackyard.guardrails.redaction import transform_stream

        async for chunk in transform_stream(chunks, self.transformer):
            yield chunk
