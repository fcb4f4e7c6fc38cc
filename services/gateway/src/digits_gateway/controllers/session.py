"""DIGITS's light login: a `username` cookie, no password (digits-features §7)."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, post, route
from litestar.datastructures import Cookie
from litestar.response import Redirect

from digits_gateway import ui
from digits_gateway.errors import errors_response
from digits_gateway.params import USERNAME_RE, read_params, wants_json


@post("/login", status_code=302, include_in_schema=False)
async def login(request: Request[Any, Any, Any]) -> Response[Any]:
    """Set the cookie and go to `next`; an invalid name re-renders the form (400 for JSON)."""
    params = await read_params(request)
    name = params.get("username") or ""
    target = ui.safe_next(params.get("next"))
    if not USERNAME_RE.match(name):
        message = (
            f'Invalid username - "{name}": start with a lowercase letter, then use only '
            "a-z, 0-9, '.', '_' and '-'"
        )
        if wants_json(request):
            return errors_response({"username": [message]})
        return ui.pages().login_page(target, message)  # type: ignore[no-any-return]
    cookie = Cookie(key="username", value=name, path="/", samesite="lax")
    return Redirect(path=target, cookies=[cookie])


@route("/logout", http_method=["GET", "POST"], status_code=302, include_in_schema=False)
async def logout(request: Request[Any, Any, Any]) -> Response[Any]:
    """Clear the cookie and go to `next` (or home)."""
    target = ui.safe_next(request.query_params.get("next"))
    response = Redirect(path=target)
    response.delete_cookie("username", path="/")
    return response
