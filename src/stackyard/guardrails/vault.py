"""Placeholders for one request: each value found becomes a typed placeholder (``<EMAIL_1>``),
the same value always the same one, and the answer is restored before the client sees it. The
mapping lives in this object only (never logged, never stored).

With an entity tagger (names, addresses and the like), :meth:`Vault.prepare` tags a request's
texts in a worker thread first, so that the model never runs on the event loop."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from stackyard.guardrails.pii import KINDS, Found, find

if TYPE_CHECKING:
    from stackyard.guardrails.ner import EntityTagger
    from stackyard.guardrails.reading import Reading

PLACEHOLDER = re.compile(r"<([A-Z_]+)_(\d+)>")
#: The longest placeholder ("<ORGANIZATION_9999>"): how much of a stream's tail may be held
#: back.
LONGEST = max(len(kind) for kind in KINDS) + len("<_9999>")


class Vault:
    def __init__(
        self,
        kinds: frozenset[str] | None = None,
        tagger: EntityTagger | None = None,
        readings: dict[str, Reading] | None = None,
        floor: float | None = None,
        public_names: bool = True,
        linked_only: bool = False,
    ) -> None:
        """``readings``: texts another rail has read with the embedding model already (the
        tagger uses them instead of reading again, and drops them once used). ``floor``: the
        tagger's confidence a place or an organisation needs (its default if None).
        ``public_names``: leave public subjects' names alone (see
        :meth:`stackyard.guardrails.ner.EntityTagger.find`). ``linked_only``: places,
        organisations, dates, ages and groups only in a text about someone
        (:func:`stackyard.guardrails.pii.about_someone`)."""
        self.kinds = kinds
        self.floor = floor
        self.public_names = public_names
        self.linked_only = linked_only
        self.tagger = tagger
        self.readings = readings if readings is not None else {}
        self._tagged: dict[str, list[Found]] = {}
        self._by_value: dict[str, str] = {}
        self._by_placeholder: dict[str, str] = {}
        self._counts: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._by_placeholder)

    def counts(self) -> dict[str, int]:
        """How many distinct values of each kind were replaced (for the audit log)."""
        return dict(self._counts)

    async def prepare(self, texts: Iterable[str]) -> None:
        """Tag ``texts`` (those :meth:`redact` will see) in a worker thread."""
        if self.tagger is None:
            return
        todo = [t for t in dict.fromkeys(texts) if t not in self._tagged]
        if todo:
            await asyncio.to_thread(self._tag, todo)

    def _tag(self, texts: list[str]) -> None:
        assert self.tagger is not None
        for text in texts:
            reading = self.readings.pop(text, None)
            if self.floor is None:
                self._tagged[text] = self.tagger.find(
                    text, self.kinds, reading, public_names=self.public_names
                )
            else:
                self._tagged[text] = self.tagger.find(
                    text, self.kinds, reading, self.floor, self.public_names
                )

    def redact(self, text: str) -> str:
        if self.tagger is not None and text not in self._tagged:
            self._tag([text])
        found = find(text, self.kinds, self._tagged.get(text, ()), self.linked_only)
        if not found:
            return text
        out, last = [], 0
        for item in found:
            out.append(text[last : item.start])
            out.append(self._placeholder(item.kind, item.value))
            last = item.end
        out.append(text[last:])
        return "".join(out)

    def _placeholder(self, kind: str, value: str) -> str:
        existing = self._by_value.get(value)
        if existing is not None:
            return existing
        self._counts[kind] = self._counts.get(kind, 0) + 1
        placeholder = f"<{kind}_{self._counts[kind]}>"
        self._by_value[value] = placeholder
        self._by_placeholder[placeholder] = value
        return placeholder

    def found(self) -> dict[str, str]:
        """Each value redacted so far, with its kind (``PERSON``, ``EMAIL``...)."""
        found = {}
        for value, placeholder in self._by_value.items():
            match = PLACEHOLDER.fullmatch(placeholder)
            if match is not None:
                found[value] = match[1]
        return found

    def restore(self, text: str, escape: bool = False) -> str:
        """``text`` with its placeholders put back; ``escape``: as they go inside a JSON
        string (a streamed tool call's arguments)."""
        if not self._by_placeholder or "<" not in text:
            return text

        def one(match: re.Match[str]) -> str:
            value = self._by_placeholder.get(match[0])
            if value is None:
                return match[0]
            return json.dumps(value, ensure_ascii=False)[1:-1] if escape else value

        return PLACEHOLDER.sub(one, text)


class StreamRestorer:
    """Restores placeholders in text that arrives in pieces: a placeholder split across two
    chunks is held back until it is whole (at most ``LONGEST`` characters)."""

    def __init__(self, vault: Vault, escape: bool = False) -> None:
        """``escape``: the text is JSON (a tool call's arguments); values go back escaped."""
        self.vault = vault
        self.escape = escape
        self.pending = ""

    def feed(self, piece: str) -> str:
        text = self.pending + piece
        cut = text.rfind("<")
        if cut != -1 and ">" not in text[cut:] and len(text) - cut < LONGEST:
            self.pending, text = text[cut:], text[:cut]
        else:
            self.pending = ""
        return self.vault.restore(text, self.escape)

    def flush(self) -> str:
        rest, self.pending = self.pending, ""
        return self.vault.restore(rest, self.escape)
