"""Screenshots of every page (tests/web/site_pages.py) at 390x844 and 1280x800, light and dark,
into artifacts/screenshots/site-<page>-<size>-<scheme>.png, for a person to look at. Each
page must also load without an uncaught exception."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from tests.web.site_pages import SITE_PAGES, WIDTHS, Contexts, SitePage, page_id

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def contexts(browser: Browser, site: str) -> Iterator[Contexts]:
    made = Contexts(browser, site)
    yield made
    made.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("size", list(WIDTHS))
@pytest.mark.parametrize("spec", SITE_PAGES, ids=page_id)
def test_screenshot(
    contexts: Contexts, screenshots: Path, spec: SitePage, size: str, scheme: str
) -> None:
    page = contexts.page(spec, scheme, size)
    try:
        scheme_seen = page.evaluate("matchMedia('(prefers-color-scheme: dark)').matches")
        assert scheme_seen == (scheme == "dark")
        path = screenshots / f"site-{spec.name}-{size}-{scheme}.png"
        page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 0
        assert contexts.errors == [], f"{spec.path}: uncaught exceptions"
    finally:
        page.close()
