"""X-Request-Id: each HTTP request starts a chain whose correlation id is the request's id.

Used by the gateway and by every service's own app (operator calls such as POST /drain).

The caller's `X-Request-Id` is kept when it is a sane token (≤ 128 of [A-Za-z0-9._-]), else a
new one is made; every command sent while the request is handled carries it
(`Digits-Correlation-Id`, and as cause of the first hop), every log line names it, and every
response returns it, error pages and 404s included.
"""

from __future__ import annotations

from typing import Any

from litestar.datastructures import Headers, MutableScopeHeaders
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from digits_proto.runtime._trace import chain, request_id

HEADER = "x-request-id"


def id_of(scope: Scope) -> str:
    """The request's id, decided once and kept in its scope (the error handlers and the
    before_send hook run after the middleware has returned)."""
    state: dict[str, Any] = scope.setdefault("state", {})
    if "request_id" not in state:
        state["request_id"] = request_id(Headers.from_scope(scope).get(HEADER))
    return str(state["request_id"])


class RequestIdMiddleware:
    """Handle the request within its chain (commands sent carry it, log lines name it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = id_of(scope)
        with chain(rid, rid):
            await self.app(scope, receive, send)


async def return_request_id(message: Message, scope: Scope) -> None:
    """A before_send hook: every response names its request."""
    if message["type"] == "http.response.start":
        MutableScopeHeaders.from_message(message)[HEADER] = id_of(scope)
