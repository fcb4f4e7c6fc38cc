"""The HTML side: where the pages module and `web/` are, login redirects, safe `next` paths."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import quote

from litestar import Request
from litestar.response import Redirect

from digits_gateway.settings import Settings


def pages() -> ModuleType:
    """The HTML pages module (imported on first use: JSON-only requests never load Jinja pages)."""
    return importlib.import_module("digits_gateway.pages")


def web_dir(settings: Settings) -> Path:
    """`web_dir` if set, else the repository's `web/` found by walking up from this package."""
    if settings.web_dir:
        return Path(settings.web_dir)
    for parent in Path(__file__).resolve().parents:
        if (parent / "web").is_dir() and (parent / "pyproject.toml").is_file():
            return parent / "web"
    return Path("web")


def login_redirect(request: Request[Any, Any, Any], target: str | None = None) -> Redirect:
    """DIGITS's requires_login for pages: to the login form, then back."""
    return Redirect(path=f"/login?next={quote(target or request.url.path, safe='/')}")


def safe_next(target: str | None) -> str:
    """A local path to go to after login/logout (never another site)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"
