"""Sessions: encrypted, signed cookies (Litestar's CookieBackendConfig, AES-GCM) whose key is
made once and kept owner-only; a session holds the account, its epoch and when it began."""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path
from typing import Any

from litestar import Request
from litestar.middleware.session.client_side import CookieBackendConfig

from digits_gateway.identity._domain import Account
from digits_gateway.settings import Settings

SESSION_COOKIE = "session"


def session_key(path: Path) -> bytes:
    """The 32-byte cookie key: read, or made on first start (0600, in a 0700 folder)."""
    if path.is_file():
        key = path.read_bytes()
        if len(key) == 32:
            return key
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(key)
    tmp.replace(path)
    return key


def session_config(settings: Settings) -> CookieBackendConfig:
    """HttpOnly, SameSite=Lax, Secure over HTTPS; the cookie's own expiry is the lifetime."""
    return CookieBackendConfig(
        secret=session_key(settings.session_key_path),
        key=SESSION_COOKIE,
        max_age=max(60, int(settings.session_hours * 3600)),
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
        path="/",
    )


def start_session(request: Request[Any, Any, Any], account: Account) -> None:
    """Sign the browser in as `account` (a new cookie value, whatever it sent before)."""
    request.set_session({"u": account.username, "e": account.epoch, "t": int(time.time())})


def end_session(request: Request[Any, Any, Any]) -> None:
    """Sign out: the cookie is cleared."""
    request.clear_session()


def session_claims(session: Any, lifetime_s: float) -> tuple[str, int] | None:
    """(username, epoch) of a well-formed session still within its lifetime, else None."""
    if not isinstance(session, dict):
        return None
    user, epoch, started = session.get("u"), session.get("e"), session.get("t")
    if not (isinstance(user, str) and isinstance(epoch, int) and isinstance(started, int)):
        return None
    if time.time() - started > lifetime_s:
        return None
    return user, epoch


def middleware(settings: Settings) -> list[Any]:
    """The session cookie's middleware, then the one that sets `request.user` from it (or from
    a Bearer token); the access defences come after both."""
    from digits_gateway.identity._middleware import AuthMiddleware

    return [session_config(settings).middleware, AuthMiddleware]
