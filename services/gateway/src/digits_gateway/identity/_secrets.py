"""Password hashes (argon2id via argon2-cffi) and random tokens (stored as sha256 only)."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()  # argon2id, RFC 9106 low-memory profile


def hash_password(password: str) -> str:
    """An argon2id PHC string for the password."""
    return _hasher.hash(password)


@functools.cache
def _dummy_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(16))


def _verify(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _dummy_hash(), password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


async def verify_password(password_hash: str | None, password: str) -> bool:
    """True when the password matches. With no hash (unknown user) a dummy hash is verified
    anyway, so an unknown name takes as long as a wrong password. Off the event loop: one
    verification is tens of milliseconds of CPU."""
    return await asyncio.to_thread(_verify, password_hash, password)


def new_token() -> str:
    """A fresh random token (256 bits), shown to its owner once."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """What is stored of a token: its sha256 (enough for 256 random bits; no salt needed)."""
    return hashlib.sha256(token.encode()).hexdigest()
