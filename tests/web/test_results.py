"""Result and error pages in Chromium (issue 17): the snapshot and the way back on every result
page, classify-many thumbnails, "misclassified only" and contrast-safe confusion cells, classify
one's "Try another image", the HTML error pages, and the model form's LR numbers and clone name."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Page, expect

from tests.web import fake_models
from tests.web.fake_site import MODEL, sign_in

pytestmark = pytest.mark.browser
WIDTHS = {"phone": (390, 844), "desktop": (1280, 800)}

# The contrast of each confusion cell's text on its background, composited over the card the
# way the browser paints it (a 1×1 canvas resolves any CSS colour, color-mix included).
CELL_CONTRAST = """() => {
  const ctx = Object.assign(document.createElement("canvas"), { width: 1, height: 1 })
    .getContext("2d", { willReadFrequently: true });
  const paint = (...colours) => {
    ctx.clearRect(0, 0, 1, 1);
    for (const c of colours) { ctx.fillStyle = c; ctx.fillRect(0, 0, 1, 1); }
    return [...ctx.getImageData(0, 0, 1, 1).data.slice(0, 3)];
  };
  const lum = (rgb) => {
    const [r, g, b] = rgb.map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  return [...document.querySelectorAll("#confusion .cell")].map((cell) => {
    const card = getComputedStyle(cell.closest(".card")).backgroundColor;
    const bg = paint(card, getComputedStyle(cell).backgroundColor);
    const fg = paint(card, getComputedStyle(cell).backgroundColor, getComputedStyle(cell).color);
    const [hi, lo] = [lum(bg), lum(fg)].sort((a, b) => b - a);
    return { text: cell.textContent, ratio: (hi + 0.05) / (lo + 0.05), strong: cell.classList.contains("strong") };
  });
}"""


@pytest.fixture
def console_errors(page: Page) -> list[str]:
    found: list[str] = []
    page.on(
        "console",
        lambda m: (
            found.append(f"{m.text} [{m.location.get('url')}]") if m.type == "error" else None
        ),
    )
    page.on("pageerror", lambda exc: found.append(str(exc)))
    return found


def no_horizontal_scroll(page: Page) -> None:
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], width


def shots(page: Page, url: str, name: str, screenshots: Path, ready: str) -> None:
    """Both widths, both themes: no horizontal scroll, a screenshot of each to look at."""
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)  # type: ignore[arg-type]
        for label, (w, h) in WIDTHS.items():
            page.set_viewport_size({"width": w, "height": h})
            page.goto(url)
            expect(page.locator(ready)).to_be_visible()
            no_horizontal_scroll(page)
            page.screenshot(
                path=str(screenshots / f"results-{name}-{label}-{scheme}.png"), full_page=True
            )


def test_classify_many_names_its_snapshot_shows_thumbnails_and_filters(
    page: Page, site: str, console_errors: list[str]
) -> None:
    page.goto(f"{site}/test/classify-many")
    expect(page.locator("#result-snapshot")).to_have_text("snapshot epoch 2")
    expect(page.locator("#result-source a")).to_have_attribute("href", f"/models/{MODEL}")
    rows = page.locator("#results tbody tr")
    expect(rows).to_have_count(12)
    expect(rows.nth(0).locator("td.confidence")).to_have_text("100.00 %")
    for i in range(12):  # lazy thumbnails load as they come into view
        rows.nth(i).scroll_into_view_if_needed()
    # 11 images are there and drawn; the deleted one's cell is left empty.
    expect(page.locator("#results td.thumb img")).to_have_count(11)
    page.wait_for_function(
        "[...document.querySelectorAll('#results td.thumb img')].every((i) => i.complete && i.naturalWidth === 32)"
    )
    assert page.locator("#results tr").nth(11).locator("td.thumb img").count() == 0
    expect(page.locator("#wrong-count")).to_have_text("3 of 12 misclassified")
    page.check("#wrong-only")
    expect(page.locator("#results tbody tr:visible")).to_have_count(3)
    assert page.locator("#results tbody tr.wrong:visible").count() == 3
    expect(page.locator("#wrong-count")).to_have_text("3 shown of 3 misclassified")
    page.locator('#confusion .cell[data-truth="cat"][data-pred="cat"]').click()
    expect(page.locator("#results tbody tr:visible")).to_have_count(0)  # right, so not shown
    page.uncheck("#wrong-only")
    expect(page.locator("#results tbody tr:visible")).to_have_count(4)  # the cat→cat cell
    page.click("#filter-clear")
    expect(page.locator("#results tbody tr:visible")).to_have_count(12)
    gone = [e for e in console_errors if "status of 404" in e and "/thumbnail?" in e]
    assert len(gone) == 1 and len(console_errors) == 1, console_errors


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_confusion_cells_reach_4_5_to_1_in_both_themes(page: Page, site: str, scheme: str) -> None:
    page.emulate_media(color_scheme=scheme)  # type: ignore[arg-type]
    page.goto(f"{site}/test/classify-many")
    for label in ("cat", "dog", "bird"):  # the diagonal: each row's majority (dog: a tie)
        diagonal = page.locator(f'#confusion .cell[data-truth="{label}"][data-pred="{label}"]')
        expect(diagonal).to_have_class(re.compile(r"\bstrong\b"))
    cells = page.evaluate(CELL_CONTRAST)
    assert cells and all(c["ratio"] >= 4.5 for c in cells), cells


def test_result_pages_at_both_widths_and_themes(page: Page, site: str, screenshots: Path) -> None:
    shots(page, f"{site}/test/classify-many", "classify-many", screenshots, "#results")
    shots(page, f"{site}/test/top-n", "top-n", screenshots, "#mosaics")
    shots(page, f"{site}/test/classify-one", "classify-one", screenshots, "#another-form")
    shots(
        page, f"{site}/test/form-error?job_id={MODEL}", "form-error", screenshots, "#error-summary"
    )
    shots(page, f"{site}/test/missing-job", "missing-job", screenshots, "#error-message")


def test_top_n_names_its_snapshot_and_links_back(page: Page, site: str) -> None:
    page.goto(f"{site}/test/top-n")
    expect(page.locator("#result-snapshot")).to_have_text("snapshot epoch 2")
    expect(page.locator("#result-source a")).to_have_attribute("href", f"/models/{MODEL}")
    expect(page.locator("#mosaics .mosaic")).to_have_count(3)


def test_classify_one_tries_another_image_with_the_same_snapshot(
    page: Page, site: str, console_errors: list[str], tmp_path: Path
) -> None:
    """The result names epoch 1 (not the newest); another image goes through the same model and
    snapshot from the result page itself."""
    sign_in(page, site, "alice")
    page.goto(f"{site}/test/classify-one")
    expect(page.locator("#result-snapshot")).to_have_text("snapshot epoch 1")
    first = page.locator(".classify-image img").get_attribute("src")
    image = tmp_path / "seven.png"
    buffer = io.BytesIO()
    Image.new("RGB", (20, 20), (250, 250, 250)).save(buffer, format="PNG")
    image.write_bytes(buffer.getvalue())
    page.set_input_files("#another_image", str(image))
    with page.expect_navigation():
        page.click("#another-button")
    expect(page.locator("#result-snapshot")).to_have_text("snapshot epoch 1")
    expect(page.locator(".predictions .pred-label").first).to_have_text("7")
    assert page.locator(".classify-image img").get_attribute("src") != first
    expect(page.locator("#another-form input[name=snapshot_epoch]")).to_have_value("1")
    assert not console_errors, console_errors
    # Not an image: the error page names the field and leads back to the model, no JSON.
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image")
    page.set_input_files("#another_image", str(notes))
    with page.expect_navigation():
        page.click("#another-button")
    expect(page.locator("#error-summary li")).to_have_text(
        "Image: The file is not an image (PNG, JPEG, …)"
    )
    expect(page.locator("#error-files")).to_be_visible()
    expect(page.locator("#error-back")).to_have_attribute("href", f"/models/{MODEL}#test-heading")


def test_a_refused_form_and_a_missing_job_are_pages_not_json(
    page: Page, site: str, console_errors: list[str]
) -> None:
    response = page.goto(f"{site}/test/form-error?job_id={MODEL}")
    assert response is not None and response.status == 400
    expect(page.locator("h1")).to_have_text("The form has errors")
    expect(page.locator("#error-summary li")).to_have_text(
        re.compile(
            r"^Image list: Choose an image list \(a text file, .*\) or an archive of images$"
        )
    )
    expect(page.locator("#error-back")).to_have_attribute("href", f"/models/{MODEL}")
    response = page.goto(f"{site}/test/missing-job")
    assert response is not None and response.status == 404
    expect(page.locator("h1")).to_have_text("Job not found")
    expect(page.locator(".site-header")).to_be_visible()
    expect(page.locator("#error-back")).to_have_attribute("href", "/")
    errors = [e for e in console_errors if "status of 400" not in e and "status of 404" not in e]
    assert not errors, errors


@pytest.fixture(scope="module")
def form_site() -> Iterator[str]:
    with fake_models.serve() as url:
        yield url


NUMBER = r"\d+(?:\.\d+)?(?:e-\d+)?"


def test_lr_preview_numbers_share_one_format(page: Page, form_site: str) -> None:
    """4 significant digits, plain down to 1e-4, an exponent only below: never 7.69e-4."""
    sign_in(page, form_site, "alice")
    page.goto(f"{form_site}/models/images/classification/new")
    page.select_option("#lr_policy", "fixed")
    cases = {
        "0.004082": "0.004082",
        "0.000769": "0.000769",
        "0.0000769": "7.69e-5",
        "0.123456": "0.1235",
    }
    for rate, shown in cases.items():
        page.fill("#learning_rate", rate)
        expect(page.locator("#lr-preview-text")).to_have_text(
            f"Starts at {shown}, {shown} at half-way, ends at {shown}."
        )
    page.select_option("#lr_policy", "step")
    page.fill("#learning_rate", "0.01")
    page.fill("#lr_step_size", "33")
    page.fill("#lr_step_gamma", "0.1")
    text = page.locator("#lr-preview-text").text_content() or ""
    numbers = re.findall(NUMBER, text)
    assert numbers == ["0.01", "0.0001", "1e-5"] or all(
        ("e" in n) == (float(n) < 1e-4) for n in numbers
    ), text
    points = json.loads(page.locator("#lr-preview").get_attribute("data-points") or "[]")
    assert points[0] == 0.01


def test_a_cloned_model_gets_a_new_name(page: Page, form_site: str) -> None:
    sign_in(page, form_site, "alice")
    page.goto(f"{form_site}/models/images/classification/new?clone={fake_models.PREV}")
    expect(page.locator("#model_name")).to_have_value("resnet-cifar (clone)")
    expect(page.locator("#clone-note")).to_contain_text("Options copied from")
