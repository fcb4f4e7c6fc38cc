"""Who is asking: `scope["user"]` is the Principal of a valid session or Bearer token, else None.

It never refuses a request itself (the access guard decides per route). A request with an
`Authorization: Bearer` header is token-authenticated only: its cookie is ignored.
`scope["auth"]` says how ("bearer", "session" or None) so CSRF can exempt bearer requests.
"""

from __future__ import annotations

from typing import Any

import structlog
from litestar.datastructures import Headers
from litestar.types import ASGIApp, Receive, Scope, Send
from litestar.utils.empty import Empty

from digits_gateway.identity._secrets import token_hash
from digits_gateway.identity._session import session_claims, session_config
from digits_gateway.readmodel import queries
from digits_gateway.settings import Settings
from digits_proto.base import Principal, Role

log = structlog.get_logger(__name__)


class AuthMiddleware:
    """Sets the principal from the read model's accounts and tokens on every request."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            user, how = _authenticate(scope)
            scope["user"] = user
            scope["auth"] = how  # type: ignore[typeddict-unknown-key]
        await self.app(scope, receive, send)


def _authenticate(scope: Scope) -> tuple[Principal | None, str | None]:
    gw: Any = scope["app"].state.get("gateway")
    scheme, _, credential = Headers.from_scope(scope).get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        if gw is None:
            return None, "bearer"
        with gw.db.cursor() as cur:
            row = queries.token_user(cur, token_hash(credential.strip()))
        return (_principal(row) if row else None), "bearer"
    if gw is None:
        return None, None
    claims = session_claims(scope.get("session"), gw.settings.session_hours * 3600)
    if claims is None:
        _forget_session(scope, gw)  # malformed or past its lifetime
        return None, None
    username, epoch, session_id = claims
    with gw.db.cursor() as cur:
        row = queries.get_user(cur, username)
        ended = queries.session_ended(cur, session_id)
    if row is None or row.disabled or row.epoch != epoch or ended:
        log.info("session_revoked", username=username)
        _forget_session(scope, gw)  # signed out, disabled or password changed since sign-in
        return None, None
    return _principal(row), "session"


def _principal(row: queries.UserRow) -> Principal:
    return Principal(username=row.username, role=Role(row.role))


def _forget_session(scope: Scope, gw: Any) -> None:
    """Clear the cookie, but only once the read model is whole: while it is rebuilt (or the
    gateway starts) an account may not be projected yet, and a restart must sign nobody out."""
    if scope.get("session") and gw.readiness.ready:
        scope["session"] = Empty


def middleware(settings: Settings) -> list[Any]:
    """The session cookie's middleware, then the one that sets `request.user` from it (or from
    a Bearer token); the access defences come after both."""
    return [session_config(settings).middleware, AuthMiddleware]
