"""Who is logged in (DIGITS's `username` cookie), safe `next` paths, and the login page."""

from __future__ import annotations

import re

from litestar import Request
from litestar.response import Template

from digits_gateway.pages._frame import _page

USERNAME_RE = re.compile(r"^[a-z][a-z0-9._-]*$")  # DIGITS utils/auth.py rule


def current_user(request: Request) -> str | None:
    """The logged-in username from DIGITS's `username` cookie, None when absent or invalid."""
    name = request.cookies.get("username") or ""
    return name if USERNAME_RE.match(name) else None


def safe_next(target: str | None) -> str:
    """A local path to go back to after login (never another site)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def login_page(next: str, error: str | None) -> Template:
    """Login form (username only, as in DIGITS); `error` re-renders it with a message."""
    return _page(
        "login.html",
        "Log in",
        None,
        status_code=400 if error else 200,
        next=safe_next(next),
        error=error or "",
    )
