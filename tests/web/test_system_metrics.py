"""Browser tests of device telemetry over time: the model page's Hardware card (live while the job
trains, kept after it ends, a note when nothing was recorded) and the cluster page's last hour."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.web import fake_cluster, fake_hardware
from tests.web.fake_hardware import HW_BARE, HW_DONE, HW_LIVE
from tests.web.fake_site import MODEL, sign_in
from tests.web.test_browser import log_in, unexpected
from tests.web.test_contrast import contrast_failures

pytestmark = pytest.mark.browser


@pytest.fixture
def errors(page: Page) -> list[str]:
    found: list[str] = []
    page.on("console", lambda msg: found.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: found.append(str(exc)))
    return found


@pytest.fixture
def live_job() -> Iterator[None]:
    fake_hardware.reset()
    yield
    fake_hardware.reset()


def post(site: str, path: str, body: dict) -> dict:
    request = urllib.request.Request(
        f"{site}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def no_side_scroll(page: Page) -> None:
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], width


def test_the_hardware_card_draws_the_run_live_and_keeps_it_after_the_lease_ends(
    page: Page, site: str, screenshots, errors: list[str], live_job
) -> None:
    """Six recorded rows, then live samples appended as they come; when the lease ends the
    card stays and shows the final recorded series (no live device list)."""
    log_in(page, site)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{site}/models/{HW_LIVE}")
    card = page.locator("#hardware")
    chart = card.locator(".hw-chart")
    expect(chart).to_have_attribute("data-points", "6")
    expect(card.locator(".hw-device")).to_have_count(1)  # gpu0, held now
    expect(chart.locator("canvas").first).to_be_visible()
    expect(chart.locator("figcaption")).to_contain_text("gpu0 on gpu-node-1")
    now = time.time()
    for i, util in enumerate([71.0, 88.0]):
        sample = {**fake_cluster.HELD, "utilization": util, "t": now + i}
        listeners = post(
            site,
            "/test/hardware/events",
            {"kind": "gpu", "payload": {"node_id": "gpu-node-1", "devices": [sample]}},
        )
        assert listeners["listeners"] >= 1
    expect(chart).to_have_attribute("data-points", "8")
    expect(card.locator(".hw-device .meter-value").nth(1)).to_have_text("88 %")
    expect(chart.locator(".hw-chart-plot")).to_have_attribute(
        "aria-label", "Utilization now 88 %, peak 88 %; memory now 77 %, peak 77 %"
    )
    card.screenshot(path=screenshots / "hardware-live-desktop.png")

    post(site, "/test/hardware/release", {"rows": 12, "until": now + 1})
    post(
        site,
        "/test/hardware/events",
        {
            "kind": "status",
            "payload": {"type": "model", "name": "lenet-live-hardware", "status": "Done"},
        },
    )
    expect(card.locator(".hw-device")).to_have_count(0, timeout=8000)  # the 5 s poll saw it
    expect(chart).to_have_attribute("data-points", "12")
    expect(card).to_be_visible()
    expect(page.locator("#hardware-none")).to_be_hidden()
    card.screenshot(path=screenshots / "hardware-after-done-desktop.png")
    assert unexpected(errors) == []


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width,height", [(390, 844), (1280, 800)])
def test_an_ended_job_shows_its_recorded_run_at_every_width(
    browser: Browser, site: str, screenshots, scheme: str, width: int, height: int
) -> None:
    """A Done job's card: the recorded chart (four lines), no live devices, no side scroll."""
    context = browser.new_context(viewport={"width": width, "height": height}, color_scheme=scheme)
    page = context.new_page()
    found: list[str] = []
    page.on("pageerror", lambda exc: found.append(str(exc)))
    sign_in(page, site, "alice")
    page.goto(f"{site}/models/{HW_DONE}")
    card = page.locator("#hardware")
    chart = card.locator(".hw-chart")
    expect(chart).to_have_attribute("data-points", "90")
    expect(card.locator(".hw-device")).to_have_count(0)
    legend = chart.locator(".u-legend .u-series .u-label").filter(visible=True)
    expect(legend).to_have_text(["Utilization", "Memory", "Host CPU", "Host RAM"])
    no_side_scroll(page)
    card.scroll_into_view_if_needed()
    card.screenshot(path=screenshots / f"hardware-done-{width}-{scheme}.png")
    assert found == []
    context.close()


def test_a_job_with_no_telemetry_says_so_instead_of_an_empty_chart(
    page: Page, site: str, errors: list[str]
) -> None:
    log_in(page, site)
    page.goto(f"{site}/models/{HW_BARE}")
    expect(page.locator("#hardware-none")).to_have_text("No device telemetry recorded.")
    expect(page.locator("#hardware")).to_be_visible()
    expect(page.locator("#hardware .hw-chart")).to_have_count(0)
    assert unexpected(errors) == []


def test_the_running_model_appends_its_live_sample_to_the_recorded_run(
    page: Page, site: str, errors: list[str]
) -> None:
    """MODEL: 58 recorded rows, then the stream's one `gpu` event."""
    log_in(page, site)
    page.goto(f"{site}/models/{MODEL}")
    expect(page.locator("#hardware .hw-chart")).to_have_attribute("data-points", "59")
    assert unexpected(errors) == []


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width,height", [(390, 844), (1280, 800)])
def test_the_cluster_page_charts_each_devices_last_hour_live(
    browser: Browser, site: str, screenshots, scheme: str, width: int, height: int
) -> None:
    """gpu0 and gpu1: 359 recorded rows each plus the live sample from /events; the gone node's
    device says it recorded nothing; the charts survive the page's 3 s re-render."""
    context = browser.new_context(viewport={"width": width, "height": height}, color_scheme=scheme)
    page = context.new_page()
    found: list[str] = []
    page.on("pageerror", lambda exc: found.append(str(exc)))
    sign_in(page, site, "alice")
    page.goto(f"{site}/cluster")
    charts = page.locator(".device-card .hw-chart")
    expect(charts).to_have_count(3)
    expect(charts.nth(0)).to_have_attribute("data-points", "360")
    expect(charts.nth(1)).to_have_attribute("data-points", "360")
    expect(charts.nth(2).locator(".hw-chart-none")).to_have_text(
        "No telemetry recorded in the last hour."
    )
    legend = charts.nth(0).locator(".u-legend .u-label").filter(visible=True)
    expect(legend).to_have_text(["Utilization", "Memory"])
    canvas = charts.nth(0).locator("canvas").first
    expect(canvas).to_be_visible()
    figure = charts.nth(0).element_handle()
    card = page.locator(".device-card").first.element_handle()
    page.wait_for_function("(card) => !card.isConnected", arg=card)  # the 3 s re-render
    assert page.evaluate("(f) => f.isConnected && f.dataset.points === '360'", figure)
    no_side_scroll(page)
    page.screenshot(path=screenshots / f"cluster-history-{width}-{scheme}.png", full_page=True)
    assert found == []
    context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("path", [f"/models/{HW_DONE}", f"/models/{HW_BARE}", "/cluster"])
def test_the_charts_cards_pass_the_contrast_check(
    browser: Browser, site: str, scheme: str, path: str
) -> None:
    """axe-core's color-contrast rule (tests/web/test_contrast.py) once the charts are drawn."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, color_scheme=scheme)
    page = context.new_page()
    sign_in(page, site, "alice")
    page.goto(site + path)
    expect(page.locator(".hw-chart, #hardware-none:visible").first).to_be_visible()
    failures = contrast_failures(page, site)
    assert failures == [], failures
    context.close()
