"""The web UI's paths: its folder on disk, and the local paths a sign-in may send back to.

A leaf module: both `ui` (which imports the pages lazily) and the pages read it, so neither
imports the other.
"""

from __future__ import annotations

from pathlib import Path

from digits_gateway.settings import Settings


def web_dir(settings: Settings) -> Path:
    """`web_dir` if set, else the repository's `web/` found by walking up from this package."""
    if settings.web_dir:
        return Path(settings.web_dir)
    for parent in Path(__file__).resolve().parents:
        if (parent / "web").is_dir() and (parent / "pyproject.toml").is_file():
            return parent / "web"
    return Path("web")


def safe_next(target: str | None) -> str:
    """A local path to go to after login/logout (never another site)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"
