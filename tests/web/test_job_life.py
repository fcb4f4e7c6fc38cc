"""Browser tests of job life on the job pages: rename in place, the Notes panel, the raw log."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.web.fake_site import DATASETS, DS_DONE, MODEL, MODELS, sign_in
from tests.web.test_browser import log_in, unexpected

pytestmark = pytest.mark.browser


@pytest.fixture
def console_errors(page: Page) -> list[str]:
    """Console errors and uncaught exceptions of the page."""
    found: list[str] = []
    page.on("console", lambda msg: found.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: found.append(str(exc)))
    return found


@pytest.fixture
def restored() -> Iterator[None]:
    """The fake site's jobs as they were (the site lives for the whole session)."""
    saved = {k: dict(v) for k, v in (*DATASETS.items(), *MODELS.items())}
    yield
    for key, job in saved.items():
        (DATASETS if key in DATASETS else MODELS)[key] = job


def test_owner_renames_a_dataset_in_place_and_edits_its_notes(
    page: Page, site: str, screenshots, restored, console_errors: list[str]
) -> None:
    """Rename → Save puts the new name in the heading (and after a reload); a blank name shows
    the server's refusal; notes are saved with PUT and shown with their line breaks."""
    log_in(page, site)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{site}/datasets/{DS_DONE}")
    page.get_by_role("button", name="Rename").click()
    name = page.get_by_label("Job name")
    expect(name).to_be_focused()
    name.fill("   ")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator("#rename-message")).to_contain_text("cannot be blank")
    name.fill("mnist, cleaned")
    page.screenshot(path=screenshots / "job-rename-open-desktop.png")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator("#job-name")).to_have_text("mnist, cleaned")
    expect(page.locator("#rename-form")).to_be_hidden()
    expect(page).to_have_title("mnist, cleaned · Dataset · DIGITS")

    expect(page.locator("#job-notes")).to_have_text("No notes.")
    page.get_by_role("button", name="Edit notes").click()
    page.get_by_role("textbox", name="Notes").fill("Digits 0-9.\nRemoved 12 blurry images.")
    page.get_by_role("button", name="Save notes").click()
    expect(page.locator("#notes-message")).to_have_text("Notes saved.")
    expect(page.locator("#job-notes")).to_have_text("Digits 0-9.\nRemoved 12 blurry images.")
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.screenshot(path=screenshots / "job-edit-dataset-desktop.png", full_page=True)

    page.reload()
    expect(page.locator("#job-name")).to_have_text("mnist, cleaned")
    page.get_by_role("button", name="Rename").click()
    page.get_by_label("Job name").press("Escape")
    expect(page.locator("#rename-form")).to_be_hidden()
    expect(page.get_by_role("button", name="Rename")).to_be_focused()
    assert unexpected(console_errors, 400) == []


def test_no_edit_controls_for_another_user(page: Page, site: str, restored) -> None:
    """A job owned by alice shows its notes to bob but no Rename or Edit notes button."""
    sign_in(page, site, "bob")
    DATASETS[DS_DONE]["notes"] = "Owned by alice."
    page.goto(f"{site}/datasets/{DS_DONE}")
    expect(page.locator("#job-notes")).to_have_text("Owned by alice.")
    expect(page.get_by_role("button", name="Rename")).to_have_count(0)
    expect(page.get_by_role("button", name="Edit notes")).to_have_count(0)


def test_model_page_opens_the_raw_log(
    page: Page, site: str, screenshots, console_errors: list[str]
) -> None:
    """The collapsed "Raw training log" panel loads the log when opened; phone width holds."""
    log_in(page, site)
    for width, label in ((1280, "desktop"), (390, "phone")):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(f"{site}/models/{MODEL}")
        expect(page.locator("#job-log")).to_be_hidden()
        page.get_by_text("Raw training log").click()
        expect(page.locator("#job-log")).to_contain_text("attempt 1 of")
        expect(page.locator("#job-log")).to_contain_text("epoch 3 snapshot saved")
        expect(page.locator("#log-state")).to_contain_text("6 lines")
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        page.locator("#log-panel").scroll_into_view_if_needed()
        page.screenshot(path=screenshots / f"job-log-model-{label}.png", full_page=True)
    assert unexpected(console_errors) == []
