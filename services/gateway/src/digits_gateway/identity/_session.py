"""Sessions: encrypted, signed cookies (Litestar's CookieBackendConfig, AES-GCM) whose key is
made once and kept owner-only; a session holds the account, its epoch and when it began."""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from litestar import Request
from litestar.middleware.session.client_side import CookieBackendConfig

from digits_gateway.identity._domain import Account
from digits_proto.base import Principal

if TYPE_CHECKING:
    from digits_gateway.identity._accounts import Accounts
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
    session = {"u": account.username, "e": account.epoch, "t": int(time.time())}
    request.set_session({**session, "s": secrets.token_hex(16)})


def end_session(request: Request[Any, Any, Any]) -> None:
    """Clear the cookie (see `sign_out`, which also ends the session for good)."""
    request.clear_session()


async def sign_out(request: Request[Any, Any, Any], accounts: Accounts) -> None:
    """Sign out: the session is recorded as ended (a copy of the cookie stops working too),
    then the cookie is cleared. A stale or token request just clears the cookie."""
    session, user = request.scope.get("session"), request.scope.get("user")
    if request.scope.get("auth") == "session" and isinstance(user, Principal):
        session_id = session.get("s") if isinstance(session, dict) else None
        if isinstance(session_id, str):
            await accounts.end_session(user, session_id)
    end_session(request)


def session_claims(session: Any, lifetime_s: float) -> tuple[str, int, str] | None:
    """(username, epoch, session id) of a well-formed session within its lifetime, else None."""
    if not isinstance(session, dict):
        return None
    user, epoch, started, sid = (session.get(k) for k in ("u", "e", "t", "s"))
    if not (isinstance(user, str) and isinstance(epoch, int) and isinstance(started, int)):
        return None
    if not isinstance(sid, str) or time.time() - started > lifetime_s:
        return None
    return user, epoch, sid
