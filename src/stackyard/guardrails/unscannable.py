"""What the text guardrails cannot read in a request: images, audio, files and token ids. The
PII and injection rails read text only, so these parts would leave unread. Each door lists
them with its shape's function here; a policy then refuses them (``unscannable: refuse``), or
lets them through with the trace and the audit log naming them (``send``)."""

from __future__ import annotations

from typing import Any

from stackyard.guardrails.anthropic_shape import RESULTS

Body = dict[str, Any]
#: Where a part is (``messages[1].content[0]``) and what it is (``image``).
Part = tuple[str, str]

#: Chat content parts that carry no text, and what they hold.
CHAT_PARTS = {"image_url": "image", "input_audio": "audio", "file": "file"}
#: Document sources that are text the rails read (the others are PDFs, URLs and file ids).
TEXT_SOURCES = ("text", "content")


def chat_parts(body: Body) -> list[Part]:
    """The parts of a chat request (the shape ``/v1/completions`` and ``/v1/responses`` are
    read in too) that carry no text: image, audio and file content parts, and an earlier
    turn's audio answer, sent back by its id."""
    found: list[Part] = []
    for index, message in enumerate(body.get("messages") or ()):
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        for number, part in enumerate(content if isinstance(content, list) else ()):
            kind = part.get("type") if isinstance(part, dict) else None
            if kind in CHAT_PARTS:
                found.append((f"messages[{index}].content[{number}]", CHAT_PARTS[kind]))
        if isinstance(message.get("audio"), dict):
            found.append((f"messages[{index}].audio", "audio"))
    return found


def messages_parts(body: Body) -> list[Part]:
    """The blocks of an Anthropic Messages request that carry no text: images, documents
    that are PDFs, URLs or uploaded files, and container uploads, also inside a tool's
    result or a document made of blocks."""
    found: list[Part] = []
    system = body.get("system")
    if isinstance(system, list):
        _blocks(system, "system", found)
    for index, message in enumerate(body.get("messages") or ()):
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            _blocks(content, f"messages[{index}].content", found)
    return found


def _blocks(blocks: list[Any], where: str, found: list[Part]) -> None:
    for number, block in enumerate(blocks):
        if not isinstance(block, dict):
            continue
        here = f"{where}[{number}]"
        kind = block.get("type")
        if kind == "image":
            found.append((here, "image"))
        elif kind == "container_upload":
            found.append((here, "file"))
        elif kind == "document":
            source = block.get("source")
            source_type = source.get("type") if isinstance(source, dict) else None
            inner = source.get("content") if isinstance(source, dict) else None
            if source_type == "content" and isinstance(inner, list):
                _blocks(inner, f"{here}.source.content", found)
            elif source_type not in TEXT_SOURCES:
                found.append((here, "file"))
        elif kind in RESULTS and isinstance(block.get("content"), list):  # blocks in blocks
            _blocks(block["content"], f"{here}.content", found)


def token_inputs(body: Body) -> list[Part]:
    """The inputs of an embeddings request given as token ids rather than text."""
    value = body.get("input")
    if not isinstance(value, list) or not value:
        return []
    if all(isinstance(v, int) for v in value):
        return [("input", "token ids")]
    return [(f"input[{i}]", "token ids") for i, v in enumerate(value) if isinstance(v, list)]


def described(parts: list[Part]) -> list[str]:
    """The parts as a trace and the audit log name them: ``messages[1].content[0] (image)``."""
    return [f"{where} ({what})" for where, what in parts]
