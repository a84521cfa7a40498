"""Virtual key material: ``sk-sy-`` and 43 random URL-safe characters, stored as SHA-256.

Keys are high-entropy random strings, so a fast unsalted hash is safe here (there is nothing
to guess), and a lookup on the request path costs one hash and one dict access.
"""

from __future__ import annotations

import hashlib
import secrets

PREFIX = "sk-sy-"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def generate_key() -> tuple[str, str, str]:
    """(the key to show once, its display prefix, its hash)."""
    key = PREFIX + secrets.token_urlsafe(32)
    return key, key[: len(PREFIX) + 4], hash_key(key)
