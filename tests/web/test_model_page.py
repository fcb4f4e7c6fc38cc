"""The model page's snapshot choices and numbers: the newest snapshot is the default everywhere,
one compact select instead of a wall of chips, the Test-a-list and Download cards appear when the
first snapshot arrives, and epochs/losses read as people write them (issue 17)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, Request, Route, expect

from tests.web.fake_modelpage import FRESH, MANY
from tests.web.fake_site import sign_in

pytestmark = pytest.mark.browser

SELECTS = ["#snapshot-list", "#snapshot_epoch", "#many_snapshot_epoch", "#download_epoch"]


@pytest.fixture
def console_errors(page: Page) -> list[str]:
    """Console errors and uncaught exceptions of the page."""
    found: list[str] = []
    page.on("console", lambda msg: found.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: found.append(str(exc)))
    return found


def open_model(page: Page, site: str, job_id: str) -> None:
    """Signed in as the owner (the forms and Make pretrained model are hers), the page settled."""
    sign_in(page, site, "alice")
    page.goto(f"{site}/models/{job_id}")
    if job_id == FRESH:  # its stream stays open
        expect(page.locator("#live-state")).to_have_text("Live")
    else:  # its history was drawn
        expect(page.locator("#kn-lr")).not_to_have_text("—")


def expect_chosen(page: Page, epoch: str, selects: list[str] = SELECTS) -> None:
    for css in selects:
        expect(page.locator(css)).to_have_value(epoch)


def capture(page: Page, pattern: str) -> list[Request]:
    """Requests to `pattern`, answered with a stand-in 200 (only what was sent matters)."""
    sent: list[Request] = []

    def answer(route: Route, request: Request) -> None:
        sent.append(request)
        route.fulfill(status=200, content_type="text/plain", body="ok")

    page.route(pattern, answer)
    return sent


def multipart_field(request: Request, name: str) -> str:
    """One field of a multipart form body."""
    body = request.post_data_buffer or b""
    marker = f'name="{name}"\r\n\r\n'.encode()
    start = body.index(marker) + len(marker)
    return body[start : body.index(b"\r\n", start)].decode()


def test_every_snapshot_choice_defaults_to_the_newest(
    page: Page, site: str, console_errors: list[str]
) -> None:
    """Classify One/Many, Top N, Download and Make pretrained model all start at epoch 59."""
    open_model(page, site, MANY)
    expect_chosen(page, "59")
    expect(page.locator("#to-pretrained-epoch")).to_have_value("59")
    for css in SELECTS:
        expect(page.locator(f"{css} option").first).to_have_text("Epoch #59")
    assert console_errors == []


def test_the_server_rendered_page_already_has_the_newest_and_the_hidden_cards(
    page: Page, site: str
) -> None:
    """Before any script runs (the real render function): every select opens at the newest,
    Make pretrained model posts it; a run without a snapshot has both cards, hidden."""
    sign_in(page, site, "alice")
    html = page.request.get(f"{site}/models/{MANY}").text()
    first = dict(re.findall(r'<select id="([^"]+)"[^>]*>\s*<option value="([^"]+)"', html))
    assert {css.lstrip("#"): first.get(css.lstrip("#")) for css in SELECTS} == {
        css.lstrip("#"): "59" for css in SELECTS
    }
    assert 'id="to-pretrained-epoch" value="59"' in html
    fresh = page.request.get(f"{site}/models/{FRESH}").text()
    assert 'id="test-many-card" hidden' in fresh and 'id="download-card" hidden' in fresh


def test_each_form_sends_the_snapshot_chosen(page: Page, site: str) -> None:
    """What the result pages name comes from these fields: the newest, or the one picked."""
    open_model(page, site, MANY)
    many = capture(page, "**/models/images/classification/classify_many")
    top_n = capture(page, "**/models/images/classification/top_n")
    download = capture(page, f"**/models/{MANY}/download?*")
    pretrained = capture(page, f"**/models/{MANY}/to_pretrained")

    page.click("#classify-many-button")
    expect(page.locator("body")).to_have_text("ok")
    assert multipart_field(many[0], "snapshot_epoch") == "59"
    page.go_back()
    page.click("#top-n-button")
    expect(page.locator("body")).to_have_text("ok")
    assert multipart_field(top_n[0], "snapshot_epoch") == "59"
    page.go_back()

    page.select_option("#download_epoch", "12")
    page.click("#download-button")
    expect(page.locator("body")).to_have_text("ok")
    assert download[0].url.endswith("/download?epoch=12")
    page.go_back()
    page.select_option("#download_epoch", "12")
    page.click("#to-pretrained-button")
    expect(page.locator("body")).to_have_text("ok")
    assert pretrained[0].post_data is not None and "epoch=12" in pretrained[0].post_data


def test_one_compact_select_replaces_the_wall_of_epoch_chips(page: Page, site: str) -> None:
    """59 snapshots: one labelled select, newest first; picking one sets every form to it."""
    page.set_viewport_size({"width": 1280, "height": 800})
    open_model(page, site, MANY)
    picker = page.locator("#snapshot-list")
    assert picker.evaluate("n => n.tagName") == "SELECT"
    expect(page.locator("label[for=snapshot-list]")).to_be_visible()
    expect(picker.locator("option")).to_have_count(59)
    expect(page.locator("#snapshot-count")).to_have_text("59 snapshots")
    card = page.locator("section[aria-labelledby=snapshots-heading]").bounding_box()
    assert card is not None and card["height"] < 220  # the chip wall was ~300 px at 1280
    picker.select_option("12")
    expect_chosen(page, "12")
    expect(page.locator("#to-pretrained-epoch")).to_have_value("12")


def test_epoch_and_loss_read_as_people_write_them(page: Page, site: str) -> None:
    """Epoch 59.33333 → "59.3 of 60"; a loss of -1.43e-6 (float noise) → "≈0"; LR plain."""
    open_model(page, site, MANY)
    expect(page.locator("#kn-epoch")).to_have_text("59.3 of 60")
    expect(page.locator("#kn-train-loss")).to_have_text("≈0")
    expect(page.locator("#kn-val-loss")).to_have_text("≈0")
    expect(page.locator("#kn-lr")).to_have_text("0.000769")
    expect(page.locator("#kn-best-acc")).to_have_text("100.00 % (epoch 59)")


def push(page: Page, site: str, kind: str, **payload: Any) -> None:
    """Send one live event to the open FRESH page (the fake stream must have it open)."""
    answer = page.request.post(
        f"{site}/test/modelpage/events", data={"kind": kind, "payload": payload}
    )
    assert answer.ok and answer.json()["listeners"] >= 1


def test_cards_appear_live_with_the_first_snapshot_and_follow_the_newest(
    page: Page, site: str, console_errors: list[str]
) -> None:
    """No snapshot: no Test-a-list/Download card. Snapshot 1 arrives: both appear, at epoch 1;
    later ones are chosen as they arrive, except where the user picked an older one."""
    open_model(page, site, FRESH)
    expect(page.locator("#kn-epoch")).to_have_text("0.5 of 60")
    for card in ("#test-many-card", "#download-card"):
        expect(page.locator(card)).to_be_hidden()
    expect(page.locator("#snapshots-empty")).to_be_visible()

    push(page, site, "snapshot", epoch=1.0)
    for card in ("#test-many-card", "#download-card"):
        expect(page.locator(card)).to_be_visible()
    expect_chosen(page, "1")
    expect(page.locator("#classify-many-button")).to_be_enabled()
    expect(page.locator("#snapshots-empty")).to_be_hidden()

    push(page, site, "snapshot", epoch=2.0)
    expect_chosen(page, "2")
    expect(page.locator("#download_epoch option")).to_have_text(["Epoch #2", "Epoch #1"])
    expect(page.locator("#to-pretrained-epoch")).to_have_value("2")

    page.select_option("#download_epoch", "1")  # an older one, on purpose: kept
    push(page, site, "snapshot", epoch=3.0)
    expect_chosen(page, "3", ["#snapshot-list", "#snapshot_epoch", "#many_snapshot_epoch"])
    expect(page.locator("#download_epoch")).to_have_value("1")
    expect(page.locator("#to-pretrained-epoch")).to_have_value("1")
    expect(page.locator("#snapshot-count")).to_have_text("3 snapshots")

    push(page, site, "snapshot", epoch=1.0, deleted=True)  # retention dropped it
    expect_chosen(page, "3")
    expect(page.locator("#many_snapshot_epoch option")).to_have_text(["Epoch #3", "Epoch #2"])
    assert console_errors == []


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_model_page_screenshots_fit_the_phone(
    page: Page, site: str, screenshots, scheme: str, console_errors: list[str]
) -> None:
    """The 59-snapshot page at both widths and themes: no horizontal scroll at 390 px."""
    page.emulate_media(color_scheme=scheme)
    for label, size in (("desktop", (1280, 800)), ("phone", (390, 844))):
        page.set_viewport_size({"width": size[0], "height": size[1]})
        open_model(page, site, MANY)
        expect(page.locator("#kn-epoch")).to_have_text("59.3 of 60")
        if label == "phone":
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= page.evaluate("window.innerWidth")
        page.screenshot(path=screenshots / f"model-snapshots-{scheme}-{label}.png", full_page=True)
    assert console_errors == []
