"""DIGITS's `/login` (its `username` field, plus `password`) and `/logout`, over real accounts."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, post
from litestar.response import Redirect

from digits_gateway import ui
from digits_gateway.controllers._common import accounts, client_address
from digits_gateway.deps import Gateway
from digits_gateway.errors import error_response
from digits_gateway.identity import SignInFailed, sign_out, start_session
from digits_gateway.params import read_params, wants_json


@post("/login", status_code=302, include_in_schema=False)
async def login(request: Request[Any, Any, Any], gw: Gateway) -> Response[Any]:
    """A right pair starts a session and goes to `next`; a wrong one answers 401 (JSON) or
    the login page with the error, the same for an unknown user as for a wrong password."""
    params = await read_params(request)
    name = (params.get("username") or "").strip()
    target = ui.safe_next(params.get("next"))
    try:
        account = await accounts(gw).sign_in(
            name, params.get("password") or "", client_address(request)
        )
    except SignInFailed as e:
        if wants_json(request):
            return error_response(request, e.code, e.message, e.kind)
        return ui.pages().login_page(target, e.message, status_code=401)  # type: ignore[no-any-return]
    start_session(request, account)
    return Redirect(path=target)


@post("/logout", status_code=302, include_in_schema=False)
async def logout(request: Request[Any, Any, Any], gw: Gateway) -> Response[Any]:
    """End the session and go to `next` (or home). POST only: a link cannot sign you out."""
    await sign_out(request, accounts(gw))
    return Redirect(path=ui.safe_next(request.query_params.get("next")))
