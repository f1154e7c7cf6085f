"""Secret tokens (status links, API keys): only their hash is stored."""

from __future__ import annotations

import hashlib


def hash_token(token: str) -> str:
    """The stored form of a secret token: its SHA-256, hex.

    Unsalted on purpose: the tokens are long random strings (not passwords),
    and a lookup must find the row by the hash alone.
    """
    return hashlib.sha256(token.encode()).hexdigest()
