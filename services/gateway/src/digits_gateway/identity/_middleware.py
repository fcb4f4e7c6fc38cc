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
from digits_gateway.identity._session import session_claims
from digits_gateway.readmodel import queries
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
    header = Headers.from_scope(scope).get("authorization", "")
    scheme, _, credential = header.partition(" ")
    if scheme.lower() == "bearer":
        if gw is None or not credential.strip():
            return None, "bearer"
        with gw.db.cursor() as cur:
            row = queries.token_user(cur, token_hash(credential.strip()))
        return (None if row is None else Principal(username=row.username, role=Role(row.role))), (
            "bearer"
        )
    claims = session_claims(scope.get("session"), gw.settings.session_hours * 3600 if gw else 0)
    if claims is None or gw is None:
        if scope.get("session"):
            scope["session"] = Empty  # malformed or expired: the cookie is cleared
        return None, None
    username, epoch = claims
    with gw.db.cursor() as cur:
        row = queries.get_user(cur, username)
    if row is None or row.disabled or row.epoch != epoch:
        log.info("session_revoked", username=username)
        scope["session"] = Empty  # disabled or password changed since sign-in
        return None, None
    return Principal(username=row.username, role=Role(row.role)), "session"
