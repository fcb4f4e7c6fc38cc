"""Where the web UI lives on disk and the cache-busting version of its static files."""

from __future__ import annotations

import functools
import hashlib

from digits_gateway.settings import get_settings
from digits_gateway.webpaths import web_dir

# The same folder the app serves templates and static files from (DIGITS_GATEWAY_WEB_DIR).
WEB_DIR = web_dir(get_settings())
TEMPLATES_DIR = WEB_DIR / "templates"
STATIC_DIR = WEB_DIR / "static"
STATIC_URL = "/static"


@functools.cache
def asset_version() -> str:
    """Short hash of every static file, so a new release never runs against cached old JS/CSS."""
    digest = hashlib.sha256()
    for path in sorted(STATIC_DIR.rglob("*")) if STATIC_DIR.is_dir() else []:
        if path.is_file():
            digest.update(path.relative_to(STATIC_DIR).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


@functools.cache
def import_map() -> dict[str, dict[str, str]]:
    """Import map: bare `uplot` plus every own module mapped to its versioned URL.

    Relative imports (`./live.js`) resolve to the unversioned URL, which the map then
    redirects, so each module loads once and always in the current version.
    """
    version = asset_version()
    imports = {
        "uplot": f"{STATIC_URL}/vendor/uPlot.esm.js?v={version}",
        "dagre": f"{STATIC_URL}/vendor/dagre.esm.js?v={version}",
    }
    for folder in ("js", "lib"):
        js_dir = STATIC_DIR / folder
        for path in sorted(js_dir.glob("*.js")) if js_dir.is_dir() else []:
            url = f"{STATIC_URL}/{folder}/{path.name}"
            imports[url] = f"{url}?v={version}"
    return {"imports": imports}
