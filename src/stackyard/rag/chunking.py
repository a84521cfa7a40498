"""Splitting documents into chunks: by tokens with overlap, within the sections that headings
mark (Markdown, and HTML or DOCX converted to it).

A token here is a word or a punctuation mark (a fast stand-in for a model's tokenizer: an
English word is 1.3 word pieces on average). Every chunk is a verbatim slice of its section,
so that a citation can point at the characters it came from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

TOKEN = re.compile(r"\w+|[^\w\s]")
HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Section:
    text: str
    start: int  # character offset in the document
    headings: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Chunk:
    text: str
    position: int  # the chunk's order in its document
    start: int  # character offsets in the document
    end: int
    metadata: dict[str, Any] = field(default_factory=dict)


def split_tokens(text: str, size: int, overlap: int) -> list[tuple[int, int]]:
    """Character spans of windows of ``size`` tokens, each sharing ``overlap`` tokens with the
    one before."""
    if size <= 0 or not 0 <= overlap < size:
        raise ValueError("chunk size must be positive and the overlap smaller than it")
    spans = [(m.start(), m.end()) for m in TOKEN.finditer(text)]
    if not spans:
        return []
    windows = []
    step = size - overlap
    first = 0
    while True:
        last = min(first + size, len(spans)) - 1
        windows.append((spans[first][0], spans[last][1]))
        if last == len(spans) - 1:
            return windows
        first += step


def markdown_sections(text: str) -> list[Section]:
    """Sections that start at each heading, each knowing the headings above it."""
    sections: list[Section] = []
    path: list[tuple[int, str]] = []
    cuts = [*HEADING.finditer(text)]
    starts = [0, *(m.start() for m in cuts)]
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else len(text)
        if i > 0:
            match = cuts[i - 1]
            level = len(match.group(1))
            path = [(lvl, title) for lvl, title in path if lvl < level]
            path.append((level, match.group(2).strip()))
        body = text[start:end]
        if body.strip():
            sections.append(Section(body, start, tuple(title for _, title in path)))
    return sections


def chunk_sections(sections: list[Section], size: int, overlap: int) -> list[Chunk]:
    chunks: list[Chunk] = []
    for section in sections:
        for lo, hi in split_tokens(section.text, size, overlap):
            metadata = dict(section.metadata)
            if section.headings:
                metadata["section"] = " > ".join(section.headings)
            chunks.append(
                Chunk(
                    section.text[lo:hi],
                    len(chunks),
                    section.start + lo,
                    section.start + hi,
                    metadata,
                )
            )
    return chunks
