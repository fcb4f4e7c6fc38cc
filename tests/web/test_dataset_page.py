"""The dataset page at phone width: per-class counts of the validation split beside the training
ones, and its wide tables scroll inside their card (a focusable, labelled region)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.web.fake_datasets import TRAIN_COUNTS, VAL_COUNTS
from tests.web.fake_site import DS_BUILDING, DS_DONE

pytestmark = pytest.mark.browser


def test_validation_distribution_beside_training(page: Page, site: str) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{site}/datasets/{DS_DONE}")
    table = page.get_by_role("table", name="Images per class, training and validation")
    expect(table.locator("thead th")).to_have_text(
        ["Class", "Training images", "Validation images"]
    )
    rows = table.locator("tbody tr")
    expect(rows).to_have_count(10)
    for i, (train, val) in enumerate(zip(TRAIN_COUNTS, VAL_COUNTS, strict=True)):
        expect(rows.nth(i).locator(".class-count")).to_have_text([str(train), str(val)])
    expect(rows.nth(3)).to_contain_text("1 failed to load")
    # Each bar is relative to its own split's largest class (420 training, 140 validation).
    widths = rows.nth(1).locator(".bar-fill").evaluate_all("bs => bs.map((b) => b.style.width)")
    assert widths == ["100%", "100%"]


def test_wide_tables_scroll_inside_their_card(page: Page, site: str) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{site}/datasets/{DS_DONE}")
    regions = page.locator(".table-scroll")
    expect(regions).to_have_count(2)
    for region in regions.all():
        assert region.get_attribute("role") == "region"
        assert region.get_attribute("tabindex") == "0"
        label = region.evaluate("r => document.getElementById(r.getAttribute('aria-labelledby'))")
        assert label is not None
        card = region.evaluate("r => r.closest('.card').getBoundingClientRect().right")
        assert region.bounding_box()["x"] + region.bounding_box()["width"] <= card
    # The entries table is wider than a phone: it scrolls in its region, from the keyboard too.
    entries = page.get_by_role("region", name="Database entries")
    assert entries.evaluate("r => r.scrollWidth > r.clientWidth")
    entries.focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_function("() => document.querySelector('.table-scroll').scrollLeft > 0")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


def test_classes_without_counts_are_a_plain_list(page: Page, site: str) -> None:
    """Before the build counts them (a parsing dataset), classes are names only."""
    page.goto(f"{site}/datasets/{DS_BUILDING}")
    expect(page.locator(".class-list li")).to_have_count(10)
    expect(page.locator(".class-table")).to_have_count(0)
