"""Buttons follow the signed-in account's role: changing a job (Delete, Abort, Rename, Edit
notes) shows to its owner and admins only; creating work (New dataset/model, Clone, Upload
pretrained model) to users and admins; a visitor and a viewer see neither. The server refuses
them anyway (tests/gateway/test_page_buttons.py, test_access_matrix.py): this is what shows."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.web.fake_site import DS_DONE, MODEL, sign_in

pytestmark = pytest.mark.browser

# alice owns DS_DONE and MODEL; bob is another user, vera a viewer, "" nobody signed in.
MAY_CHANGE = {"alice": True, "admin": True, "bob": False, "vera": False, "": False}
MAY_CREATE = {"alice": True, "admin": True, "bob": True, "vera": False, "": False}
CHANGE_BUTTONS = ["Delete job", "Rename", "Edit notes"]


def open_as(browser: Browser, site: str, user: str, path: str) -> Page:
    page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    if user:
        sign_in(page, site, user)
    page.goto(site + path)
    return page


def shown(page: Page, role: str, name: str, visible: bool) -> None:
    """The control is visible, or absent/hidden, as the role says."""
    target = page.get_by_role(role, name=name, exact=True)
    if visible:
        expect(target).to_be_visible()
    else:
        expect(target).to_have_count(0)


@pytest.mark.parametrize("user", list(MAY_CHANGE))
def test_dataset_page_buttons(browser: Browser, site: str, user: str) -> None:
    page = open_as(browser, site, user, f"/datasets/{DS_DONE}")
    try:
        for name in CHANGE_BUTTONS:
            shown(page, "button", name, MAY_CHANGE[user])
        shown(page, "link", "Clone job", MAY_CREATE[user])
        shown(page, "link", "New model from this dataset", MAY_CREATE[user])
    finally:
        page.context.close()


@pytest.mark.parametrize("user", list(MAY_CHANGE))
def test_model_page_buttons(browser: Browser, site: str, user: str) -> None:
    page = open_as(browser, site, user, f"/models/{MODEL}")
    try:
        for name in [*CHANGE_BUTTONS, "Abort job"]:  # the model is running: Abort applies
            shown(page, "button", name, MAY_CHANGE[user])
        shown(page, "link", "Clone job", MAY_CREATE[user])
    finally:
        page.context.close()


@pytest.mark.parametrize("user", list(MAY_CHANGE))
def test_header_and_home_buttons(browser: Browser, site: str, user: str) -> None:
    page = open_as(browser, site, user, "/")
    try:
        nav = page.get_by_role("navigation", name="Main")
        for name in ("New dataset", "New model"):
            shown(nav, "link", name, MAY_CREATE[user])
        for name in ("Users", "Audit"):
            shown(nav, "link", name, user == "admin")
        shown(page, "link", "Upload pretrained model", MAY_CREATE[user])
        shown(page.locator(".site-header"), "link", "Sign in", not user)
    finally:
        page.context.close()


def test_user_menu_opens_from_the_keyboard(browser: Browser, site: str) -> None:
    """The header's user menu (a <details>) opens with Enter and holds the account and Sign out."""
    page = open_as(browser, site, "bob", "/")
    try:
        sign_out = page.get_by_role("button", name="Sign out")
        expect(sign_out).to_be_hidden()
        page.locator(".user-menu > summary").focus()
        page.keyboard.press("Enter")
        expect(sign_out).to_be_visible()
        expect(page.get_by_role("link", name="Your account")).to_be_visible()
        # The fake site has no /logout; the real one is tested in tests/gateway/test_sign_in.py.
        assert sign_out.evaluate("b => b.form.getAttribute('action')").startswith("/logout?next=")
        page.locator(".user-menu > summary").press("Enter")
        expect(sign_out).to_be_hidden()
    finally:
        page.context.close()
