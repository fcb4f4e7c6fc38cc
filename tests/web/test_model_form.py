"""The new-model form in Chromium: LR preview, per-policy fields, network tabs, Customize,
the live network graph, previous networks, clone and the dataset summary (fake routes)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.web import fake_models, fake_site
from tests.web.fake_models import DS_COLOR, DS_GRAY, PREV

pytestmark = pytest.mark.browser
NEW = "/models/images/classification/new"


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    """Base URL of the stand-in gateway for the model form."""
    with fake_models.serve() as url:
        yield url


@pytest.fixture
def errors_seen(page: Page) -> list[str]:
    """Console errors and uncaught exceptions of the page."""
    found: list[str] = []
    page.on("console", lambda m: found.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: found.append(str(exc)))
    return found


def open_form(page: Page, site: str, query: str = "") -> None:
    fake_site.sign_in(page, site, "alice")
    page.goto(site + NEW + query)
    expect(page.locator("#dataset option")).to_have_count(3)


def points(page: Page) -> list[float | None]:
    return json.loads(page.locator("#lr-preview").get_attribute("data-points") or "[]")


def test_lr_preview_redraws_on_policy_and_parameter_changes(
    page: Page, site: str, errors_seen: list[str]
) -> None:
    """The preview follows the policy and its fields in the browser, without a request."""
    open_form(page, site)
    expect(page.locator("#lr-preview canvas")).to_have_count(1)
    step = points(page)
    assert step[0] == 0.01 and step[33] == pytest.approx(0.001) and step[66] == pytest.approx(1e-4)
    expect(page.locator('[data-policy="step"]')).to_be_visible()
    expect(page.locator('[data-policy="poly"]')).to_be_hidden()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.select_option("#lr_policy", "poly")
    expect(page.locator('[data-policy="poly"]')).to_be_visible()
    expect(page.locator('[data-policy="step"]')).to_be_hidden()
    assert points(page)[50] == pytest.approx(0.01 * 0.5**3)
    page.fill("#lr_poly_power", "1")
    assert points(page)[50] == pytest.approx(0.005)
    page.fill("#learning_rate", "0.1, 0.2")
    expect(page.locator("#lr-preview-text")).to_contain_text("2 schedules")
    page.select_option("#lr_policy", "multistep")
    page.fill("#learning_rate", "0.01")
    page.fill("#lr_multistep_values", "10,x")
    expect(page.locator("#lr-preview-text")).to_contain_text("cannot be computed")
    page.fill("#lr_multistep_values", "10,20")
    assert points(page)[25] == pytest.approx(0.01 * 0.25)
    assert not [u for u in requests if "visualize" in u]
    assert errors_seen == []


def test_solver_and_hsv_fields_show_only_when_they_apply(page: Page, site: str) -> None:
    """RMS decay appears for RMSprop only; the HSV strengths once HSV shifting is ticked."""
    open_form(page, site)
    expect(page.locator("#rms_decay")).to_be_hidden()
    page.select_option("#solver_type", "RMSPROP")
    expect(page.locator("#rms_decay")).to_be_visible()
    expect(page.locator("#aug_hsv_h")).to_be_hidden()
    page.check("#aug_hsv_use")
    expect(page.locator("#aug_hsv_h")).to_have_value("0.02")


def test_dataset_summary_follows_the_selected_dataset(page: Page, site: str) -> None:
    """Choosing a dataset shows its image size, classes and split counts."""
    open_form(page, site)
    page.select_option("#dataset", DS_COLOR)
    expect(page.locator("#dataset-summary")).to_contain_text("32×32, colour")
    expect(page.locator("#dataset-summary")).to_contain_text("300 / 100")
    page.select_option("#dataset", DS_GRAY)
    expect(page.locator("#dataset-summary")).to_contain_text("28×28, grayscale")


def test_network_tabs_work_by_keyboard_and_set_the_method(page: Page, site: str) -> None:
    """Arrow keys, Home and End move between the tabs; the hidden method follows."""
    open_form(page, site)
    page.locator("#tab-standard").focus()
    page.keyboard.press("ArrowRight")
    expect(page.locator("#tab-previous")).to_be_focused()
    expect(page.locator("#tab-previous")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#panel-previous")).to_be_visible()
    expect(page.locator("#panel-standard")).to_be_hidden()
    assert page.locator("#method").input_value() == "previous"
    page.keyboard.press("End")
    expect(page.locator("#tab-custom")).to_be_focused()
    assert page.locator("#method").input_value() == "custom"
    page.keyboard.press("ArrowRight")
    expect(page.locator("#tab-standard")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.locator("#panel-standard")).to_be_focused()
    assert page.locator('[role="tab"][tabindex="0"]').count() == 1


def test_customize_fills_the_editor_and_the_graph_draws(
    page: Page, site: str, errors_seen: list[str]
) -> None:
    """Customize loads the Gluon source into the Custom tab and the graph is drawn from it."""
    open_form(page, site)
    page.select_option("#dataset", DS_COLOR)
    page.get_by_role("button", name="Customize AlexNet").click()
    expect(page.locator("#tab-custom")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#custom_network")).to_be_focused()
    expect(page.locator("#custom_network")).to_have_value("# alexnet\n" + fake_models.LENET_SOURCE)
    nodes = page.locator("#network-graph svg .graph-node")
    expect(nodes).to_have_count(5)
    expect(page.locator('#network-graph .graph-node[data-op="Dense"]').last).to_contain_text("1×3")
    expect(page.locator("#graph-status")).to_contain_text("5 layers")
    assert fake_models.customize_calls[-1]["network"] == "alexnet"
    assert fake_models.visualize_calls[-1]["dataset_id"] == DS_COLOR
    assert errors_seen == []


def test_typing_redraws_the_graph_debounced_and_shows_the_failing_line(
    page: Page, site: str
) -> None:
    """Typing asks once after a pause; an error names and shows the failing line."""
    open_form(page, site)
    page.locator("#tab-custom").click()
    before = len(fake_models.visualize_calls)
    editor = page.locator("#custom_network")
    editor.click()
    editor.press_sequentially("net = nn.Conv2D(8, 3)", delay=10)
    expect(page.locator("#network-graph svg")).to_have_count(1)
    assert len(fake_models.visualize_calls) - before == 1
    editor.press("Enter")
    editor.press_sequentially("oops")
    expect(page.locator("#network-error")).to_contain_text("line 2")
    expect(page.locator("#network-error pre")).to_have_text("2 | oops")
    expect(editor).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#network-graph svg")).to_have_count(1)  # the last good graph stays


def test_editor_tab_indents_and_escape_tab_leaves(page: Page, site: str) -> None:
    """Tab inserts four spaces in the editor; Esc then Tab moves focus on."""
    open_form(page, site)
    page.locator("#tab-custom").click()
    editor = page.locator("#custom_network")
    editor.click()
    editor.press("Tab")
    editor.press_sequentially("x")
    expect(editor).to_have_value("    x")
    editor.press("Escape")
    editor.press("Tab")
    expect(editor).not_to_be_focused()


def test_previous_networks_list_jobs_with_snapshots(page: Page, site: str) -> None:
    """Previous networks offers jobs with snapshots, each with a snapshot select."""
    open_form(page, site)
    page.locator("#tab-previous").click()
    expect(page.locator("input[name=previous_networks]")).to_have_count(1)
    expect(page.locator(f'select[name="{PREV}-snapshot"] option')).to_have_text(
        ["Epoch 3", "Epoch 2", "Epoch 1"]
    )
    page.select_option(f'select[name="{PREV}-snapshot"]', "2")
    page.get_by_role("button", name="Customize lenet-mnist").click()
    expect(page.locator("#custom_network")).to_have_value(f"# {PREV}\n" + fake_models.LENET_SOURCE)
    assert fake_models.customize_calls[-1] == {"network": PREV, "snapshot_epoch": "2"}


def test_clone_fills_the_form_from_the_saved_fields(page: Page, site: str) -> None:
    """`?clone=<id>` copies the job's saved form, previous network and snapshot included."""
    open_form(page, site, f"?clone={PREV}")
    expect(page.locator("#model_name")).to_have_value("resnet-cifar (clone)")
    expect(page.locator("#dataset")).to_have_value(DS_COLOR)
    expect(page.locator("#solver_type")).to_have_value("RMSPROP")
    expect(page.locator("#rms_decay")).to_have_value("0.9")
    expect(page.locator("#lr_poly_power")).to_be_visible()
    expect(page.locator("#aug_hsv_use")).to_be_checked()
    expect(page.locator("#shuffle")).not_to_be_checked()
    expect(page.locator("#tab-previous")).to_have_attribute("aria-selected", "true")
    expect(page.locator(f"#prev-{PREV}")).to_be_checked()
    expect(page.locator(f'select[name="{PREV}-snapshot"]')).to_have_value("2")
    assert points(page)[50] == pytest.approx(0.05 * 0.25)


def test_refused_form_keeps_values_and_shows_errors(page: Page, site: str) -> None:
    """After a 400 the form shows the custom tab, the errors and every value as submitted."""
    fake_site.sign_in(page, site, "alice")
    page.goto(site + "/test/model-form-errors")
    expect(page.locator("#tab-custom")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#custom_network")).to_have_value("oops\n")
    expect(page.locator("#lr_multistep_values")).to_have_value("20,x")
    expect(page.locator("#lr_multistep_values")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#aug_hsv_use")).to_be_checked()
    expect(page.locator("#shuffle")).not_to_be_checked()
    expect(page.locator("#rms_decay")).to_be_visible()
    expect(page.locator("#error-summary")).to_contain_text("Custom network")
    expect(page.locator("#network-error")).to_contain_text("line 1")


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_model_form_screenshots(page: Page, site: str, scheme: str) -> None:
    """Screenshots of the form with the LR preview and a drawn graph, to look at."""
    shots = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    page.emulate_media(color_scheme=scheme)
    for width, label in ((1280, "desktop"), (390, "phone")):
        page.set_viewport_size({"width": width, "height": 900})
        open_form(page, site)
        page.select_option("#dataset", DS_GRAY)
        page.select_option("#lr_policy", "sigmoid")
        page.get_by_role("button", name="Customize LeNet").click()
        expect(page.locator("#network-graph svg .graph-node")).to_have_count(5)
        page.evaluate("document.activeElement.blur()")
        width_px = page.evaluate("document.documentElement.scrollWidth")
        assert width_px <= width
        page.screenshot(path=shots / f"model-form-{scheme}-{label}.png", full_page=True)


def test_home_model_rows_show_a_loss_sparkline(page: Page) -> None:
    """A model row on the home page draws its train-loss sparkline with a text alternative."""
    with fake_site.serve() as url:
        page.goto(url + "/")
        row = page.locator(f'tr[data-job-id="{fake_site.MODEL}"]')
        expect(row.locator("svg.sparkline")).to_have_attribute(
            "aria-label", "Train loss from 2.3 to 0.36"
        )
        assert row.locator("svg.sparkline path").count() == 1


def test_inline_validation_names_the_field_and_blocks_submit(page: Page, site: str) -> None:
    """A bad value shows its message beside the field; Create then focuses it instead of posting."""
    open_form(page, site)
    page.fill("#learning_rate", "0.1, abc")
    page.locator("#learning_rate").blur()
    expect(page.locator("#learning_rate-error")).to_have_text("⚠ Not a valid float value: 'abc'.")
    expect(page.locator("#learning_rate")).to_have_attribute("aria-invalid", "true")
    page.fill("#train_epochs", "0")
    posted: list[str] = []
    page.on("request", lambda r: posted.append(r.url) if r.method == "POST" else None)
    page.get_by_role("button", name="Create").click()
    expect(page.locator("#dataset")).to_be_focused()  # first problem: no dataset chosen
    expect(page.locator("#train_epochs-error")).to_have_text("⚠ Number must be at least 1.")
    expect(page.get_by_role("button", name="Create")).to_be_enabled()
    page.fill("#learning_rate", "0.1")
    page.locator("#learning_rate").blur()
    expect(page.locator("#learning_rate-error")).to_have_count(0)
    assert not [u for u in posted if u.endswith("/models/images/classification")]


def test_model_page_offers_clone_into_the_new_model_form(page: Page) -> None:
    """The model page's Clone job link opens the new-model form with `?clone=<id>`."""
    with fake_site.serve() as url:
        fake_site.sign_in(page, url, "alice")  # cloning creates a job: not for viewers
        page.goto(url + f"/models/{fake_site.MODEL}")
        expect(page.get_by_role("link", name="Clone job")).to_have_attribute(
            "href", f"/models/images/classification/new?clone={fake_site.MODEL}"
        )
