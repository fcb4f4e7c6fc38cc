"""What every controller needs: the injected gateway, the acting principal, text answers."""

from __future__ import annotations

from typing import Any

from litestar import MediaType, Request, Response
from litestar.datastructures import State

from digits_gateway.deps import Gateway
from digits_gateway.errors import NotLoggedIn, Unavailable
from digits_gateway.identity import Accounts
from digits_gateway.params import Params
from digits_proto.base import Principal


def provide_gateway(state: State) -> Gateway:
    """Dependency: the resources the lifespan built."""
    return state.gateway  # type: ignore[no-any-return]


def current_principal(request: Request[Any, Any, Any]) -> Principal | None:
    """Who the auth middleware says is asking (session or Bearer token), or None."""
    user = request.scope.get("user")
    return user if isinstance(user, Principal) else None


def require_user(request: Request[Any, Any, Any], params: Params | None = None) -> Principal:
    """The signed-in principal, or 401. A `username` parameter never changes who you are:
    `params` is accepted for the DIGITS call sites and ignored."""
    user = current_principal(request)
    if user is None:
        raise NotLoggedIn()
    return user


def accounts(gw: Gateway) -> Accounts:
    """The accounts service the lifespan built."""
    if gw.accounts is None:
        raise Unavailable("Accounts are not ready yet; retry")
    return gw.accounts


def client_address(request: Request[Any, Any, Any]) -> str:
    """The peer's address (a reverse proxy's, when behind one), for sign-in throttling."""
    return request.client.host if request.client else "unknown"


def text(message: str, status_code: int = 200) -> Response[str]:
    """DIGITS answered deletes and aborts with a bare sentence."""
    return Response(message, status_code=status_code, media_type=MediaType.TEXT)
