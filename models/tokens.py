"""Secret tokens (status links, API keys): only their hash is stored."""

from __future__ import annotations

import hashlib
import secrets


def new_status_token() -> str:
    """A private status link's token: 32 characters of [A-Za-z0-9_-] (web.public checks that shape)."""
    return secrets.token_urlsafe(24)


def hash_token(token: str) -> str:
    """The stored form of a secret token: its SHA-256, hex.

    Unsalted on purpose: the tokens are long random strings (not passwords),
    and a lookup must find the row by the hash alone.
    """
    return hashlib.sha256(token.encode()).hexdigest()
