"""Browser tests of the web UI in headless Chromium against the fake site (live SSE included)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.web.fake_cluster import CLUSTER
from tests.web.fake_site import (
    DS_BUILDING,
    DS_DONE,
    DS_GONE,
    DS_RUNNING,
    DS_STALE,
    MODEL,
    NEW_MODEL,
    sign_in,
)

pytestmark = pytest.mark.browser

PAGES = {
    "home": "/",
    "login": "/test/login-error",
    "dataset-new": "/test/dataset-errors",
    "dataset-done": f"/datasets/{DS_DONE}",
    "dataset-running": f"/datasets/{DS_RUNNING}",
    "dataset-building": f"/datasets/{DS_BUILDING}",
    "model-new": "/test/model-errors",
    "model": f"/models/{MODEL}",
    "classify": "/test/classify",
    "cluster": "/cluster",
}


@pytest.fixture
def console_errors(page: Page) -> list[str]:
    """Console errors and uncaught exceptions of the page, collected for the test to check."""
    found: list[str] = []
    page.on(
        "console",
        lambda msg: (
            found.append(f"{msg.text} [{msg.location.get('url')}]") if msg.type == "error" else None
        ),
    )
    page.on("pageerror", lambda exc: found.append(str(exc)))
    return found


def unexpected(errors: list[str], *allowed: int) -> list[str]:
    """Console errors other than the browser's note on an expected HTTP status."""
    return [e for e in errors if not any(f"status of {code} " in e for code in allowed)]


def log_in(page: Page, site: str) -> None:
    sign_in(page, site, "alice")


def settle(page: Page, name: str) -> None:
    """Wait until a page has received all of its fake live events."""
    if name == "home":
        expect(page.locator(f'tr[data-job-id="{DS_GONE}"]')).to_have_count(0)
        expect(page.locator(f'tr[data-job-id="{NEW_MODEL}"]')).to_have_count(1)
    elif name == "model":
        expect(page.locator("#kn-epoch")).to_have_text("3 of 5")
        expect(page.locator("#job-eta")).to_have_text("1 min 20 s")
    elif name == "dataset-building":
        expect(page.locator("#job-progress-text")).to_have_text("63 %")
        expect(page.locator("#job-eta")).to_have_text("41 s")
    elif name == "dataset-running":
        expect(page.locator("#job-status")).to_have_attribute("data-status", "Done")
    elif name == "model-new":
        expect(page.locator("#dataset option")).to_have_count(3)
    if name == "home":
        expect(page.locator("#devices")).to_be_visible()
    elif name == "model":
        expect(page.locator("#hardware")).to_contain_text("76 °C")
    elif name == "cluster":
        expect(page.locator(".queue-table tbody tr")).to_have_count(3)


def test_home_lists_jobs_and_applies_live_events(
    page: Page, site: str, console_errors: list[str]
) -> None:
    """Home lists datasets and models, then follows status, progress, new and deleted jobs."""
    page.goto(site + "/")
    datasets, models = page.locator("#datasets-rows"), page.locator("#models-rows")
    expect(datasets.locator(f'tr[data-job-id="{DS_DONE}"]')).to_contain_text("mnist-28")
    expect(datasets.locator(f'tr[data-job-id="{DS_DONE}"] .badge')).to_have_text("✓ Done")
    running = datasets.locator(f'tr[data-job-id="{DS_RUNNING}"]')
    expect(running).to_contain_text("cifar-small <b>bold?</b>")  # text, never parsed as HTML
    expect(running.locator(".badge")).to_have_text("✓ Done")  # from the live status event
    expect(models.locator(f'tr[data-job-id="{MODEL}"] .progress-cell')).to_contain_text("55 %")
    expect(models.locator(f'tr[data-job-id="{NEW_MODEL}"]')).to_contain_text("fresh-model")
    expect(datasets.locator(f'tr[data-job-id="{DS_GONE}"]')).to_have_count(0)
    expect(datasets.locator(f'tr[data-job-id="{DS_STALE}"]')).to_have_count(0)  # not in history
    expect(page.locator("#datasets-count")).to_have_text("(2)")
    expect(page.locator("#models-count")).to_have_text("(2)")
    expect(page.locator("#announce")).not_to_be_empty()
    first = models.locator("tr").first
    expect(first).to_have_attribute("data-job-id", NEW_MODEL)  # newest first
    assert console_errors == []


def test_model_page_draws_charts_from_history_and_live_metrics(
    page: Page, site: str, console_errors: list[str]
) -> None:
    """The model page draws both uPlot charts and updates key numbers and snapshots live."""
    page.goto(site + f"/models/{MODEL}")
    expect(page.locator("#combined-chart canvas")).to_have_count(1)
    expect(page.locator("#lr-chart canvas")).to_have_count(1)
    expect(page.locator("#kn-best-acc")).to_have_text("97.12 % (epoch 3)")
    expect(page.locator("#kn-epoch")).to_have_text("3 of 5")
    expect(page.locator("#kn-val-loss")).to_have_text("0.12")
    expect(page.locator("#kn-lr")).to_have_text("0.001")
    expect(page.locator("#chart-empty")).to_be_hidden()
    expect(page.locator("#combined-chart .u-legend")).to_contain_text("Val accuracy (%)")
    expect(page.locator("#snapshot_epoch")).to_have_value("3")
    expect(page.locator("#snapshot-list option")).to_have_text(["Epoch #3", "Epoch #2", "Epoch #1"])
    expect(page.locator("#classify-button")).to_be_enabled()
    expect(page.locator("#job-progress-text")).to_have_text("60 %")
    expect(page.locator("#live-state")).to_be_visible()
    expect(page.locator("a[data-dataset-name]").first).to_have_text("mnist-28")
    height = page.locator("#combined-chart canvas").evaluate(
        "c => c.getBoundingClientRect().height"
    )
    assert height > 200
    assert console_errors == []


def test_model_chart_follows_the_theme(page: Page, site: str, console_errors: list[str]) -> None:
    """Switching the theme rebuilds the chart with the dark palette and keeps its data."""
    page.goto(site + f"/models/{MODEL}")
    settle(page, "model")
    toggle = page.locator("#theme-toggle")
    toggle.click()
    expect(toggle).to_have_attribute("aria-label", "Colour theme: light")
    toggle.click()
    expect(toggle).to_have_accessible_name("Colour theme: dark")
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    expect(page.locator("#combined-chart canvas")).to_have_count(1)
    bg = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert bg == "rgb(18, 20, 23)"
    page.reload()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")  # kept in localStorage
    assert console_errors == []


def test_dataset_page_shows_info_counts_classes_and_errors(
    page: Page, site: str, console_errors: list[str]
) -> None:
    """A built dataset shows image info, split counts, classes with counts and image errors."""
    log_in(page, site)  # the owner: "New model from this dataset" shows to who may create
    page.goto(site + f"/datasets/{DS_DONE}")
    expect(page.locator("h1")).to_have_text("mnist-28")
    facts = page.locator("#job-details")
    expect(facts).to_contain_text("28×28")
    expect(facts).to_contain_text("Grayscale (1 channel)")
    expect(facts).to_contain_text("Squash")
    expect(facts).to_contain_text("recordio")
    expect(facts).to_contain_text("1250 (25 %)")
    expect(page.locator(".class-table tbody tr")).to_have_count(10)
    expect(page.locator(".errors .error-list")).to_contain_text(
        "train/3/bad.png (train): cannot identify image file"
    )
    expect(page.locator("#abort-form")).to_be_hidden()
    expect(page.locator("#status-history tr")).to_have_count(3)
    expect(page.get_by_role("link", name="New model from this dataset")).to_be_visible()
    expect(page.locator(".warnings")).to_contain_text("class 7 has fewer images")
    mean = page.get_by_role("img", name="Mean image of the training set")
    expect(mean).to_be_visible()
    assert mean.evaluate("img => img.complete && img.naturalWidth") == 28
    assert console_errors == []


def test_running_dataset_becomes_done_live(
    page: Page, site: str, console_errors: list[str]
) -> None:
    """A building dataset shows progress and ETA, then turns Done from its event stream."""
    page.goto(site + f"/datasets/{DS_RUNNING}")
    expect(page.locator("#job-status")).to_have_attribute("data-status", "Done")
    expect(page.locator("#status-live")).to_have_attribute("aria-live", "polite")
    expect(page.locator("#status-history tr")).to_have_count(3)
    expect(page.locator("#abort-form")).to_be_hidden()
    expect(page.locator("#progress-block")).to_be_hidden()
    assert console_errors == []


def test_delete_asks_in_a_dialog_and_shows_the_refusal(
    page: Page, site: str, console_errors: list[str]
) -> None:
    """Delete opens a dialog focused on Cancel; a 403 refusal is shown as text."""
    log_in(page, site)  # the owner: only she (or an admin) sees Delete
    page.goto(site + f"/datasets/{DS_DONE}")
    page.get_by_role("button", name="Delete job").click()
    dialog = page.locator("#confirm-dialog")
    expect(dialog).to_be_visible()
    expect(page.get_by_role("button", name="Cancel")).to_be_focused()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    page.get_by_role("button", name="Delete job").click()
    dialog.get_by_role("button", name="Delete job").click()
    expect(page.locator("#action-message")).to_have_text(
        "Could not delete: Cannot delete dataset because 1 model(s) depend on it: lenet-mnist"
    )
    assert unexpected(console_errors, 403) == []


def test_dataset_form_shows_errors_next_to_fields_and_keeps_values(
    page: Page, site: str, console_errors: list[str]
) -> None:
    """A refused new-dataset form shows each error at its field, linked, with values kept."""
    log_in(page, site)
    page.goto(site + "/test/dataset-errors")
    expect(page.locator("#error-summary")).to_be_focused()
    expect(page.locator("#error-summary li")).to_have_count(2)
    folder = page.locator("#folder_train")
    expect(folder).to_have_value("/etc")
    expect(folder).to_have_attribute("aria-invalid", "true")
    expect(folder).to_have_attribute("aria-describedby", "folder_train-help folder_train-error")
    expect(page.locator("#folder_train-error")).to_have_text("⚠ Folder is outside the data roots")
    expect(page.locator("#folder_pct_val-error")).to_contain_text("between 0 and 100")
    expect(page.locator("#folder_pct_val")).to_have_value("120")
    expect(page.locator("input[name=resize_channels][value='1']")).to_be_checked()
    expect(page.locator("#resize_mode")).to_have_value("crop")
    expect(page.locator("#resize_width")).to_have_value("256")
    expect(page.locator("#dataset_name")).not_to_have_attribute("aria-invalid", "true")
    page.locator("#error-summary a").first.click()
    expect(folder).to_be_focused()
    assert unexpected(console_errors, 400) == []


def test_model_form_lists_usable_datasets_and_shows_errors(
    page: Page, site: str, console_errors: list[str]
) -> None:
    """The new-model form offers Done and running datasets from /index.json and shows errors."""
    log_in(page, site)
    page.goto(site + "/test/model-errors")
    options = page.locator("#dataset option")
    expect(options).to_have_text(["Choose a dataset…", "mnist-28", "cifar-small (Running)"])
    expect(page.locator("#dataset")).to_have_value(DS_DONE)
    expect(page.locator("#model_name-error")).to_contain_text("This field is required.")
    expect(page.locator("#learning_rate")).to_have_value("-1")
    expect(page.locator("#solver_type")).to_have_value("ADAM")
    expect(page.locator("input[name=standard_networks][value=lenet]")).to_be_checked()
    expect(page.get_by_role("group", name="Standard networks")).to_be_visible()
    assert unexpected(console_errors, 400) == []


def test_new_model_page_preselects_dataset_from_query(
    page: Page, site: str, console_errors: list[str]
) -> None:
    """GET /models/images/classification/new?dataset=<id> preselects that dataset."""
    log_in(page, site)
    page.goto(site + f"/models/images/classification/new?dataset={DS_RUNNING}")
    expect(page.locator("#dataset")).to_have_value(DS_RUNNING)
    expect(page.locator("#train_epochs")).to_have_value("30")
    expect(page.locator("#learning_rate")).to_have_value("0.01")
    assert console_errors == []


def test_keyboard_reaches_skip_link_and_job_buttons(
    page: Page, site: str, console_errors: list[str]
) -> None:
    """Tab reaches the skip link first, then the Abort and Delete buttons; Enter opens the dialog."""
    log_in(page, site)  # the buttons show only to who may use them: alice owns the model
    page.goto(site + f"/models/{MODEL}")
    settle(page, "model")
    page.keyboard.press("Tab")
    expect(page.locator(".skip-link")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#main")).to_be_focused()
    reached = set()
    for _ in range(12):
        page.keyboard.press("Tab")
        reached.add(page.evaluate("document.activeElement.id"))
        if "delete-button" in reached:
            break
    assert {"abort-button", "delete-button"} <= reached
    page.keyboard.press("Enter")
    expect(page.locator("#confirm-dialog")).to_be_visible()
    expect(page.get_by_role("button", name="Cancel")).to_be_focused()
    page.keyboard.press("Enter")  # Cancel
    expect(page.locator("#confirm-dialog")).to_be_hidden()
    assert console_errors == []


def test_keyboard_reaches_form_submit(page: Page, site: str) -> None:
    """Every field of the new-dataset form and its Create button are reachable by Tab."""
    log_in(page, site)
    page.goto(site + "/datasets/images/classification/new")
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent.trim()") == "Create":
            break
    expect(page.get_by_role("button", name="Create")).to_be_focused()


@pytest.mark.parametrize("name", list(PAGES))
def test_no_horizontal_scroll_at_390px(
    page: Page, site: str, name: str, console_errors: list[str]
) -> None:
    """No page scrolls sideways on a 390 px wide phone."""
    log_in(page, site)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(site + PAGES[name])
    settle(page, name)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"{name} is {width}px wide"
    assert unexpected(console_errors, 400) == []


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_screenshots(
    page: Page, site: str, screenshots, scheme: str, console_errors: list[str]
) -> None:
    """Every page renders in light and dark, desktop and phone (screenshots to look at)."""
    log_in(page, site)
    page.emulate_media(color_scheme=scheme)
    for width, label in ((1280, "desktop"), (390, "phone")):
        page.set_viewport_size({"width": width, "height": 900})
        for name, path in PAGES.items():
            page.goto(site + path)
            settle(page, name)
            page.evaluate("document.activeElement && document.activeElement.blur()")
            page.screenshot(path=screenshots / f"{name}-{scheme}-{label}.png", full_page=True)
    assert unexpected(console_errors, 400) == []


def test_home_devices_with_nobody_waiting_say_only_what_is_free(
    page: Page, site: str, console_errors: list[str]
) -> None:
    """With an empty queue the home line is "x of y GPUs available" and nothing after it."""
    log_in(page, site)
    quiet = {**CLUSTER, "queue": []}
    page.route("**/api/v1/cluster", lambda route: route.fulfill(json=quiet))
    page.goto(site + "/")
    expect(page.locator("#devices")).to_have_text("1 of 2 GPUs available")
    assert unexpected(console_errors, 400) == []


def test_devices_on_home_cluster_page_and_model_hardware_panel(
    page: Page, site: str, console_errors: list[str]
) -> None:
    """Home says how many GPUs are free; /cluster shows holders and the queue; the model page
    shows the GPU it holds, updated by a live `gpu` event."""
    log_in(page, site)
    page.goto(site + "/")
    expect(page.locator("#devices")).to_have_text("1 of 2 GPUs available · 3 jobs waiting")
    page.goto(site + "/cluster")
    expect(page.locator("#cluster-summary")).to_have_text("1 of 2 GPUs available")
    rows = page.locator(".queue-table tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.first).to_contain_text("alexnet-big")
    expect(page.get_by_role("link", name="lenet-mnist")).to_be_visible()
    expect(page.locator(".node").nth(1)).to_contain_text("gone")
    page.goto(site + f"/models/{MODEL}")
    panel = page.locator("#hardware")
    expect(panel).to_contain_text("NVIDIA H100 80GB HBM3")
    expect(panel).to_contain_text("76 °C")  # the live event (74 °C before it)
    expect(panel).to_contain_text("48211")
    assert unexpected(console_errors, 400) == []
