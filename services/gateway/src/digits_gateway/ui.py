"""The HTML side: the web helper's `pages` module (optional until it exists) and `web/`."""

from __future__ import annotations

import functools
import importlib
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import quote

from litestar import Request
from litestar.response import Redirect

from digits_gateway.settings import Settings


@functools.cache
def pages() -> ModuleType | None:
    """`digits_gateway.pages`, or None while it does not exist (the JSON routes still work)."""
    try:
        return importlib.import_module("digits_gateway.pages")
    except ModuleNotFoundError as e:
        if e.name == "digits_gateway.pages":
            return None
        raise


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
