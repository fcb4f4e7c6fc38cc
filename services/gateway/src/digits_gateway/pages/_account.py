"""The account page (password, API tokens) and the admin's users page: plain HTML forms posting
to the same use cases as `/api/v1`, so they need no script (the CSP allows none inline)."""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.response import Redirect, Template

from digits_gateway.controllers._common import accounts, require_user
from digits_gateway.deps import Gateway
from digits_gateway.forms import FormErrors
from digits_gateway.identity import AccountConflict, start_session
from digits_gateway.pages._frame import _page
from digits_gateway.params import read_params
from digits_gateway.readmodel import queries
from digits_proto.base import Role


def _account_page(
    request: Request[Any, Any, Any], gw: Gateway, status_code: int = 200, **context: Any
) -> Template:
    user = require_user(request)
    with gw.db.cursor() as cur:
        tokens = queries.list_tokens(cur, user.username)
    context.setdefault("errors", {})
    return _page(
        "account.html",
        "Account",
        user.username,
        status_code=status_code,
        role=user.role.value,
        tokens=tokens,
        min_length=gw.settings.password_min_length,
        **context,
    )


@get("/account", include_in_schema=False, sync_to_thread=False)
def account(request: Request[Any, Any, Any], gw: Gateway) -> Template:
    """Change one's password; create, list and revoke one's API tokens."""
    return _account_page(request, gw)


@post("/account/password", status_code=200, include_in_schema=False)
async def account_password(request: Request[Any, Any, Any], gw: Gateway) -> Template:
    """A new password: other sessions end, this one is renewed."""
    params = await read_params(request)
    user = require_user(request)
    try:
        await accounts(gw).change_password(user, params.get("old") or "", params.get("new") or "")
    except FormErrors as e:
        return _account_page(request, gw, 400, errors=e.errors)
    account_state, _ = await accounts(gw).store.load(user.username)
    if account_state is not None:
        start_session(request, account_state)
    return _account_page(request, gw, notice="Password changed.")


@post("/account/tokens", status_code=200, include_in_schema=False)
async def account_token(request: Request[Any, Any, Any], gw: Gateway) -> Template:
    """Create a token and show it, this once."""
    name = ((await read_params(request)).get("name") or "").strip()
    if not 1 <= len(name) <= 100:
        return _account_page(request, gw, 400, errors={"name": ["Name the token (1-100 chars)"]})
    token_id, token = await accounts(gw).issue_token(require_user(request), name)
    return _account_page(request, gw, new_token={"id": token_id, "name": name, "token": token})


@post("/account/tokens/{token_id:str}/revoke", status_code=303, include_in_schema=False)
async def account_revoke(request: Request[Any, Any, Any], gw: Gateway, token_id: str) -> Redirect:
    """Revoke one of one's tokens, back to the account page."""
    await accounts(gw).revoke_token(require_user(request), token_id)
    return Redirect(path="/account", status_code=303)


def _users_page(
    request: Request[Any, Any, Any],
    gw: Gateway,
    values: dict[str, Any] | None = None,
    errors: dict[str, list[str]] | None = None,
) -> Template:
    with gw.db.cursor() as cur:
        users = queries.list_users(cur)
    return _page(
        "admin_users.html",
        "Users",
        require_user(request).username,
        status_code=400 if errors else 200,
        users=users,
        values={"role": "user", **(values or {})},
        errors=errors or {},
        min_length=gw.settings.password_min_length,
    )


@get("/admin/users", include_in_schema=False, sync_to_thread=False)
def admin_users(request: Request[Any, Any, Any], gw: Gateway) -> Template:
    """Every account, a form to open one, and role/disable buttons (admin)."""
    return _users_page(request, gw)


@post("/admin/users", status_code=303, include_in_schema=False)
async def admin_create_user(request: Request[Any, Any, Any], gw: Gateway) -> Redirect | Template:
    """Open an account (admin); the form again with the errors."""
    params = await read_params(request)
    values = {"username": params.get("username") or "", "role": params.get("role") or "user"}
    try:
        role = Role(values["role"])
    except ValueError:
        return _users_page(request, gw, values, {"role": ["Choose user, viewer or admin"]})
    try:
        await accounts(gw).create_user(
            require_user(request), values["username"], params.get("password") or "", role
        )
    except FormErrors as e:
        return _users_page(request, gw, values, e.errors)
    except AccountConflict as e:
        return _users_page(request, gw, values, {e.field: [e.message]})
    return Redirect(path="/admin/users", status_code=303)


@post("/admin/users/{username:str}", status_code=303, include_in_schema=False)
async def admin_update_user(
    request: Request[Any, Any, Any], gw: Gateway, username: str
) -> Redirect | Template:
    """Set a role, or disable/enable (admin)."""
    params = await read_params(request)
    try:
        role = Role(params.get("role")) if params.get("role") else None
    except ValueError:
        return _users_page(request, gw, None, {"role": ["Choose user, viewer or admin"]})
    flag = params.get("disabled")
    disabled = None if flag is None else flag.lower() in ("1", "true", "on", "yes")
    password = params.get("password") or None
    try:
        await accounts(gw).update_user(require_user(request), username, role, disabled, password)
    except AccountConflict as e:
        return _users_page(request, gw, None, {e.field: [e.message]})
    except FormErrors as e:
        return _users_page(request, gw, None, e.errors)
    return Redirect(path="/admin/users", status_code=303)


account_routes: list[Any] = [
    account,
    account_password,
    account_token,
    account_revoke,
    admin_users,
    admin_create_user,
    admin_update_user,
]
