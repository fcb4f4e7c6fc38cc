"""Every page at phone width (390 px): nothing scrolls sideways, the header stays compact, and
wide tables scroll inside their card rather than widening the page."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect

from tests.web.site_pages import SITE_PAGES, Contexts, SitePage, page_id

pytestmark = pytest.mark.browser

HEADER_MAX_PX = 80  # at 390 px: brand + live/theme/user on one row, the nav links on a second

# What sticks out past the viewport, for the failure message.
OVERFLOWING = """() => {
  const width = window.innerWidth;
  const out = [], all = [];
  for (const el of document.body.querySelectorAll("*")) {
    const r = el.getBoundingClientRect();
    if (r.width && r.right > width + 0.5) {
      let clipped = false;  // inside a scrolling/clipping box that itself fits
      for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
        const ov = getComputedStyle(p).overflowX;
        if (ov !== "visible" && p.getBoundingClientRect().right <= width + 0.5) { clipped = true; break; }
      }
      const name = `${el.tagName.toLowerCase()}${el.id ? "#" + el.id : ""}.${[...el.classList].join(".")} right=${Math.round(r.right)}`;
      (clipped ? all : out).push(name);
    }
  }
  // An absolutely placed element escapes a scroller that is not its containing block: then
  // nothing looks unclipped, so list what sticks out inside scrollers too.
  return (out.length ? out : all).slice(0, 8);
}"""


@pytest.fixture(scope="module")
def contexts(browser: Browser, site: str) -> Iterator[Contexts]:
    made = Contexts(browser, site)
    yield made
    made.close()


@pytest.mark.parametrize("spec", SITE_PAGES, ids=page_id)
def test_no_horizontal_scroll_at_390(contexts: Contexts, spec: SitePage) -> None:
    page = contexts.page(spec, "light", "phone")
    try:
        width = page.evaluate("document.documentElement.scrollWidth")
        inner = page.evaluate("window.innerWidth")
        assert width <= inner, f"{spec.path}: page is {width} px wide: {page.evaluate(OVERFLOWING)}"
        header = page.locator(".site-header").bounding_box()
        assert header is not None and header["height"] <= HEADER_MAX_PX, header
    finally:
        page.close()


def test_phone_header_keeps_everything_reachable(contexts: Contexts) -> None:
    """At 390 px: the skip link comes first; every nav link, even one scrolled out of the nav
    row, comes into view when tabbed to; theme toggle and user menu stay in the first row."""
    page = contexts.page(SitePage("admin-home", "/", "admin"), "light", "phone")
    try:
        page.keyboard.press("Tab")
        skip = page.get_by_role("link", name="Skip to content")
        expect(skip).to_be_focused()
        expect(skip).to_be_in_viewport()
        brand = page.locator(".brand").bounding_box()
        for control in ("#theme-toggle", ".user-menu > summary"):
            box = page.locator(control).bounding_box()
            assert box is not None and box["y"] < brand["y"] + brand["height"], control
        nav = page.get_by_role("navigation", name="Main")
        last = nav.get_by_role("link").last
        expect(last).to_have_text("Audit")
        expect(last).not_to_be_in_viewport(ratio=1)  # off the row's right end at first
        for _ in range(nav.get_by_role("link").count() + 1):
            page.keyboard.press("Tab")
            if last.evaluate("a => a === document.activeElement"):
                break
        expect(last).to_be_focused()
        box = last.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, box
    finally:
        page.close()


def test_user_menu_closes_on_escape_and_outside(contexts: Contexts) -> None:
    """The header's user menu, by keyboard: Enter opens it, Escape (from inside it) closes it
    with focus back on its summary; a click outside closes it, and so does tabbing out."""
    page = contexts.page(SitePage("home", "/"), "light", "phone")
    try:
        menu = page.locator(".user-menu")
        summary = menu.locator("summary")
        account = menu.get_by_role("link", name="Your account")
        summary.focus()
        page.keyboard.press("Enter")
        expect(menu).to_have_attribute("open", "")
        page.keyboard.press("Tab")
        expect(account).to_be_focused()
        page.keyboard.press("Escape")
        expect(menu).not_to_have_attribute("open", "")
        expect(summary).to_be_focused()

        page.keyboard.press("Enter")
        expect(account).to_be_visible()
        page.locator("main h1, main h2").first.click()
        expect(menu).not_to_have_attribute("open", "")
        expect(account).to_be_hidden()

        summary.focus()
        page.keyboard.press("Enter")
        expect(account).to_be_visible()
        for _ in range(3):  # the link, Sign out, then the first focusable after the header
            page.keyboard.press("Tab")
        expect(menu).not_to_have_attribute("open", "")
    finally:
        page.close()


ROW_BOXES = """rows => rows.map(tr => {
  const box = (sel) => tr.querySelector(sel).getBoundingClientRect().toJSON();
  return {id: tr.dataset.jobId, height: tr.getBoundingClientRect().height,
          tick: box(".row-select"), link: box(".job-link"), badge: box(".badge")};
})"""
ROW_MAX_PX = 180  # a job row on a phone: a short card (one labelled line a column was 250+)


@pytest.mark.parametrize("path", ["/", "/test/home"])  # the second: groups, tags, metrics
def test_home_rows_are_compact_cards_on_phones(contexts: Contexts, path: str) -> None:
    """At 390 px every job row of the home list is a short card: checkbox at its left, name and
    status badge on its first line, and the checkbox still ticks the row."""
    page = contexts.page(SitePage("home", path), "light", "phone")
    try:
        shown = "tr[data-job-id]:not([hidden])"
        rows = page.locator(f"#datasets-rows {shown}, #models-rows {shown}")
        expect(rows.first).to_be_visible()
        assert rows.count() >= 4
        # Measured in one go: live events may move rows between two separate reads.
        for row in rows.evaluate_all(ROW_BOXES):
            assert row["height"] <= ROW_MAX_PX, row
            tick, link, badge = row["tick"], row["link"], row["badge"]
            assert tick["right"] <= link["left"], ("checkbox left of the name", row)
            assert tick["width"] >= 20 and tick["height"] >= 20, row
            assert abs(badge["top"] - link["top"]) < link["height"], ("status on name line", row)
            assert badge["right"] <= 390, row
        first = rows.first.locator(".row-select")
        first.click()
        expect(first).to_be_checked()
        first.click()
        expect(first).not_to_be_checked()
    finally:
        page.close()
