"""Wording and polish a QA walk found (issue 17): a refused Top N / Classify One says what to
do in the form's words and leads back to that form; one percent format on every result page and
room between Classify One's cards; the phone header's nav row fades at the edge it scrolls to;
the home list's hidden header takes no keyboard focus on a phone; a CPU slot shows no
"Processes: none"."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.web.fake_cluster import CLUSTER, MODEL
from tests.web.fake_site import sign_in

pytestmark = pytest.mark.browser
SIZES = {"phone": (390, 844), "desktop": (1280, 800)}
PERCENT = re.compile(r"^\d{1,3}\.\d\d %$")  # "97.12 %": the format of the result pages
# ... but Classify One's list keeps DIGITS's "97.12%": scripts written for DIGITS split each
# prediction on whitespace and read the label at [1] (tests/e2e/test_digits_suite.py does).
DIGITS_PERCENT = re.compile(r"^\d{1,3}\.\d\d%$")


def new_page(browser: Browser, site: str, size: str, scheme: str = "light", user: str = "alice"):
    width, height = SIZES[size]
    context = browser.new_context(viewport={"width": width, "height": height}, color_scheme=scheme)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    if user:
        sign_in(page, site, user)
    return page, errors


def test_a_refused_top_n_names_the_fields_by_their_labels_and_goes_back_to_its_form(
    browser: Browser, site: str, tmp_path: Path, screenshots: Path
) -> None:
    """An archive of another type: the summary names "Archive of images", the page says the
    file must be chosen again, and its link lands on the model page's list form. No list at
    all: the message uses the form's labels (no raw field name) and no file note."""
    page, errors = new_page(browser, site, "desktop")
    rar = tmp_path / "pictures.rar"
    rar.write_bytes(b"Rar!\x1a\x07\x00")
    page.goto(f"{site}/models/{MODEL}")
    page.set_input_files("#image_archive", str(rar))
    with page.expect_navigation():
        page.click("#top-n-button")
    expect(page.locator("h1")).to_have_text("The form has errors")
    expect(page.locator("#error-summary li")).to_have_text(
        re.compile(r"^Archive of images: Upload a \.zip, .* archive of images$")
    )
    expect(page.locator("#error-files")).to_have_text(
        "A browser cannot keep the files you chose: choose them again on the form."
    )
    page.screenshot(path=screenshots / "error-top-n-archive-1280-light.png", full_page=True)
    back = page.locator("#error-back")
    expect(back).to_have_text(re.compile("Back to the form"))
    back.click()
    expect(page).to_have_url(f"{site}/models/{MODEL}#test-many-heading")
    expect(page.locator("#test-many-heading")).to_be_in_viewport()

    with page.expect_navigation():
        page.click("#top-n-button")  # nothing chosen
    summary = page.locator("#error-summary li")
    expect(summary).to_have_text(
        "Image list: Choose an image list (a text file, one 'path [label]' a line) "
        "or an archive of images"
    )
    expect(page.locator("#error-files")).to_have_count(0)
    assert not errors, errors
    page.context.close()


@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_classify_one_writes_percentages_as_the_other_result_pages_and_spaces_its_cards(
    browser: Browser, site: str, size: str, screenshots: Path
) -> None:
    """Classify One's "97.12%" (DIGITS's), classify many's "97.12 %"; the "Try another image" card
    stands a gap below the input image and the predictions, at either width."""
    page, errors = new_page(browser, site, size)
    page.goto(f"{site}/test/classify")
    for text in page.locator(".predictions .pred-pct").all_text_contents():
        assert DIGITS_PERCENT.match(text), text
    gap = page.evaluate(
        """() => {
          const above = [...document.querySelectorAll(".classify-layout > *")]
            .map((el) => el.getBoundingClientRect().bottom);
          return document.querySelector(".try-another").getBoundingClientRect().top - Math.max(...above);
        }"""
    )
    assert gap >= 12, f"{gap} px between the result cards and Try another image"
    page.screenshot(path=screenshots / f"classify-one-gap-{size}.png", full_page=True)
    page.goto(f"{site}/test/classify-many")
    confidences = page.locator("td.confidence").all_text_contents()
    assert confidences and all(PERCENT.match(t) for t in confidences), confidences
    assert not errors, errors
    page.context.close()


# Where the nav row's fades lie and what sits under them, at the row's start and at its end.
NAV_FADES = """() => {
  const row = document.querySelector(".nav-links");
  const style = getComputedStyle(row);
  const box = row.getBoundingClientRect();
  const links = () => [...row.querySelectorAll("a")].map((a) => a.getBoundingClientRect());
  const start = parseFloat(style.paddingLeft), end = parseFloat(style.paddingRight);
  row.scrollLeft = 0;
  const first = links();
  row.scrollLeft = row.scrollWidth;
  const last = links();
  row.scrollLeft = 0;
  return { mask: style.maskImage || style.webkitMaskImage, overflows: row.scrollWidth > row.clientWidth,
           left: box.left, right: box.right, start, end,
           firstLeft: first[0].left, cutAtEnd: first.some((r) => r.left < box.right - end && r.right > box.right - end),
           lastRight: last[last.length - 1].right };
}"""


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_phone_nav_row_fades_where_it_scrolls_on(
    browser: Browser, site: str, scheme: str, screenshots: Path
) -> None:
    """At 390 px the admin's nav row overflows: a fade (a mask) over its right end shows a link
    cut there; the first link starts clear of the left fade and the last one, scrolled to,
    ends clear of the right one."""
    page, errors = new_page(browser, site, "phone", scheme, user="admin")
    page.goto(f"{site}/")
    fades = page.evaluate(NAV_FADES)
    assert fades["overflows"], fades
    assert "linear-gradient" in fades["mask"], fades
    assert fades["start"] >= 8 and fades["end"] >= 16, fades
    assert fades["firstLeft"] >= fades["left"] + fades["start"] - 0.5, fades
    assert fades["cutAtEnd"], fades  # a link runs into the fade: the hint that there is more
    assert fades["lastRight"] <= fades["right"] - fades["end"] + 0.5, fades
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.locator(".site-header").screenshot(path=screenshots / f"header-fade-390-{scheme}.png")
    assert not errors, errors
    page.context.close()


FOCUSED = """() => {
  const el = document.activeElement;
  const r = el.getBoundingClientRect();
  return { tag: el.tagName, cls: el.className, id: el.id, width: r.width, height: r.height,
           hiddenHead: !!el.closest("thead") && getComputedStyle(el).visibility !== "visible" };
}"""


def test_the_home_lists_hidden_header_takes_no_focus_on_a_phone(
    browser: Browser, site: str
) -> None:
    """At 390 px the table headers are clipped out of sight: Tab never lands on their
    "select all" box or sort buttons (each stop is something seen); at 1280 px it does."""
    page, errors = new_page(browser, site, "phone")
    page.goto(f"{site}/")
    expect(page.locator("#models-rows tr[data-job-id]").first).to_be_attached()
    select_all = page.locator('.select-all[data-kind="models"]')
    select_all.focus()
    assert not select_all.evaluate("el => el === document.activeElement")
    stops = []
    for _ in range(120):
        page.keyboard.press("Tab")
        stop = page.evaluate(FOCUSED)
        if stop["tag"] == "BODY":
            break
        stops.append(stop)
    hidden = [s for s in stops if "select-all" in s["cls"] or "sort-button" in s["cls"]]
    assert not hidden, hidden
    unseen = [s for s in stops if s["width"] < 2 or s["height"] < 2]
    assert not unseen, unseen
    assert any("row-select" in s["cls"] for s in stops)  # the rows' own boxes still are
    assert not errors, errors
    page.context.close()

    page, errors = new_page(browser, site, "desktop")
    page.goto(f"{site}/")
    select_all = page.locator('.select-all[data-kind="models"]')
    select_all.focus()
    assert select_all.evaluate("el => el === document.activeElement")
    page.context.close()


def cpu_cluster() -> dict:
    """The fake cluster plus a CPU-only node (the gpu-broker's CPU slots: kind "cpu", no
    processes, temperature or power) whose slot 0 is held by the model."""
    cluster = copy.deepcopy(CLUSTER)
    gib = 1 << 30
    sample = {
        "node_id": "cpu-node-1",
        "device_id": "cpu0",
        "memory_used": 20 * gib,
        "memory_total": 64 * gib,
        "utilization": 55.0,
        "temperature": None,
        "power_watts": None,
        "processes": [],
        "job_id": MODEL,
        "host_cpu": 55.0,
        "host_memory_used": 20 * gib,
        "host_memory_total": 64 * gib,
        "t": 0,
    }
    holder = {"job_id": MODEL, "name": "lenet-mnist", "lease_id": "l9", "since": 0}
    device = {
        "device_id": "cpu0",
        "kind": "cpu",
        "index": 0,
        "name": "CPU slot 0",
        "memory_total": 64 * gib,
        "cores": 8,
        "node_id": "cpu-node-1",
        "holder": holder,
        "sample": sample,
    }
    cluster["nodes"].append({"node_id": "cpu-node-1", "alive": True, "devices": [device]})
    return cluster


def test_a_cpu_slot_shows_its_holder_not_processes_none(
    browser: Browser, site: str, screenshots: Path
) -> None:
    """A CPU slot held by a training job: "Held by <job>", its memory and utilization and a note
    that they are the machine's, but no Processes / Temperature / Power lines, before and after
    a live sample; a GPU keeps its processes line."""
    cluster = cpu_cluster()
    live = {
        "node_id": "cpu-node-1",
        "devices": [{**cluster["nodes"][-1]["devices"][0]["sample"], "utilization": 80.0}],
    }
    page, errors = new_page(browser, site, "desktop")
    page.route("**/api/v1/cluster", lambda route: route.fulfill(json=cluster))
    page.route(
        "**/events",
        lambda route: route.fulfill(
            status=200,
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"},
            body=f"event: gpu\nid: 1\ndata: {json.dumps(live)}\n\n",
        ),
    )
    page.goto(f"{site}/cluster")
    cpu = page.locator(".device-card").filter(has_text="cpu0")
    expect(cpu.locator(".holder")).to_have_text("Held by lenet-mnist")
    expect(cpu.locator(".meter-value").last).to_have_text("80 %")  # the live sample arrived
    expect(cpu.locator(".sample-note")).to_have_text(re.compile("whole machine", re.I))
    for word in ("Processes", "Temperature", "Power"):
        expect(cpu.get_by_text(word)).to_have_count(0)
    gpu = page.locator(".device-card").filter(has_text="gpu0").first
    expect(gpu.get_by_text("Processes")).to_have_count(1)
    cpu.screenshot(path=screenshots / "cluster-cpu-slot-1280-light.png")
    assert not errors, errors
    page.context.close()
