"""Who is signed in (the principal the auth middleware set), safe `next` paths, the login page."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.response import Template

from digits_gateway.pages._frame import _page
from digits_gateway.webpaths import safe_next
from digits_proto.base import Principal


def current_user(request: Request[Any, Any, Any]) -> str | None:
    """The signed-in username (session or token), None when anonymous."""
    user = request.scope.get("user")
    return user.username if isinstance(user, Principal) else None


def login_page(next: str, error: str | None, status_code: int | None = None) -> Template:
    """The sign-in form (username and password); `error` re-renders it with a message."""
    return _page(
        "login.html",
        "Sign in",
        None,
        status_code=status_code or (400 if error else 200),
        next=safe_next(next),
        error=error or "",
    )
