"""Text contrast on every page (tests/web/site_pages.py), light and dark: axe-core's
color-contrast rule (WCAG 2 AA: 4.5:1, 3:1 for large text) over every visible text element.
axe is vendored for tests only (web/static/vendor/axe.min.js) and loaded from /static, which
the pages' CSP allows; no page of the product loads it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.web.site_pages import SITE_PAGES, Contexts, SitePage, page_id

pytestmark = pytest.mark.browser

AXE_URL = "/static/vendor/axe.min.js"
RUN_AXE = """async () => {
  const result = await axe.run(document, {
    runOnly: { type: "rule", values: ["color-contrast"] },
    resultTypes: ["violations"],
  });
  return result.violations.flatMap((v) => v.nodes.map((n) => ({
    target: n.target.join(" "),
    html: n.html.slice(0, 120),
    why: (n.any[0] || {}).message || n.failureSummary,
  })));
}"""


def contrast_failures(page: Page, site: str) -> list[dict[str, Any]]:
    """Every text element under the contrast minimum on the page as it is now."""
    page.add_script_tag(url=site + AXE_URL)
    return page.evaluate(RUN_AXE)


@pytest.fixture(scope="module")
def contexts(browser: Browser, site: str) -> Iterator[Contexts]:
    made = Contexts(browser, site)
    yield made
    made.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("spec", SITE_PAGES, ids=page_id)
def test_text_contrast(contexts: Contexts, site: str, spec: SitePage, scheme: str) -> None:
    page = contexts.page(spec, scheme, "desktop")
    try:
        failures = contrast_failures(page, site)
        listed = "\n".join(f"  {f['target']}: {f['why']}  {f['html']}" for f in failures)
        assert not failures, f"{spec.path} ({scheme}): {len(failures)} low-contrast\n{listed}"
    finally:
        page.close()


def test_checker_catches_low_contrast(contexts: Contexts, site: str) -> None:
    """The check itself can fail: the confusion matrix's old diagonal colours (2.48:1 light)."""
    page = contexts.page(SITE_PAGES[0], "light", "desktop")
    try:
        page.evaluate(
            """() => {
              const p = document.createElement("p");
              p.id = "low"; p.textContent = "87";
              p.style.color = "#ffffff"; p.style.background = "#4fa3e0";
              document.querySelector("main").append(p);
            }"""
        )
        targets = [f["target"] for f in contrast_failures(page, site)]
        assert "#low" in targets
    finally:
        page.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_open_user_menu_contrast(
    contexts: Contexts, site: str, screenshots: Path, scheme: str
) -> None:
    """The header's user menu, opened (only visible text is checked above)."""
    page = contexts.page(SITE_PAGES[0], scheme, "phone")
    try:
        page.locator(".user-menu > summary").click()
        expect(page.get_by_role("button", name="Sign out")).to_be_visible()
        page.screenshot(path=str(screenshots / f"site-user-menu-phone-{scheme}.png"))
        assert contrast_failures(page, site) == []
    finally:
        page.close()
