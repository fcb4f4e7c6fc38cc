"""What every controller needs: the injected gateway, the acting user, text answers."""

from __future__ import annotations

from typing import Any

from litestar import MediaType, Request, Response
from litestar.datastructures import State

from digits_gateway.deps import Gateway
from digits_gateway.errors import InvalidUsername, NotLoggedIn
from digits_gateway.params import USERNAME_RE, Params, username


def provide_gateway(state: State) -> Gateway:
    """Dependency: the resources the lifespan built."""
    return state.gateway  # type: ignore[no-any-return]


def require_user(request: Request[Any, Any, Any], params: Params | None = None) -> str:
    """DIGITS's requires_login: 401 without a user, 400 for a name breaking its rule."""
    name = username(request, params)
    if not name:
        raise NotLoggedIn()
    if not USERNAME_RE.match(name):
        raise InvalidUsername(f'Invalid username - "{name}"')
    return name


def text(message: str, status_code: int = 200) -> Response[str]:
    """DIGITS answered deletes and aborts with a bare sentence."""
    return Response(message, status_code=status_code, media_type=MediaType.TEXT)
