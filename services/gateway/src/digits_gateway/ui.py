"""The HTML side: where the pages module and `web/` are, login redirects, safe `next` paths."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any
from urllib.parse import quote

from litestar import Request
from litestar.response import Redirect

from digits_gateway.webpaths import safe_next, web_dir

__all__ = ["login_redirect", "pages", "safe_next", "web_dir"]


def pages() -> ModuleType:
    """The HTML pages module (imported on first use: JSON-only requests never load Jinja pages)."""
    return importlib.import_module("digits_gateway.pages")


def login_redirect(request: Request[Any, Any, Any], target: str | None = None) -> Redirect:
    """DIGITS's requires_login for pages: to the login form, then back."""
    return Redirect(path=f"/login?next={quote(target or request.url.path, safe='/')}")
