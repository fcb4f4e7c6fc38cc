"""The walking skeleton in headless Chromium against the real system, through the form pages."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.browser import TRACE_SCRIPT, console_errors, shot
from tests.e2e.browser import browser_type_launch_args as browser_type_launch_args  # fixture
from tests.e2e.conftest import USER_PASSWORD, System, signed_in, write_intensity_classes

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

DATASET_BUILD_S = 120
TRAINING_S = 300


def _live_page_kept(page: Page, loaded_at: int) -> None:
    """The page was never reloaded: what changed on it came over its event stream."""
    assert page.evaluate("window.__loadedAt") == loaded_at


def test_user_builds_a_dataset_trains_lenet_and_classifies_an_image_in_the_browser(
    page: Page, digits_system: System
) -> None:
    """Login → dataset built live → LeNet trains with live charts → top-5 puts "bright" first."""
    folder = digits_system.root / "browser-intensity"
    write_intensity_classes(folder)
    errors = console_errors(page)
    page.add_init_script(TRACE_SCRIPT)
    page.set_viewport_size({"width": 1280, "height": 900})
    url = digits_system.url

    # Sign in with a password, to an account the admin opened.
    with signed_in(digits_system, "browser-tester"):
        pass
    page.goto(url + "/login")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Username").fill("browser-tester")
    page.get_by_label("Password").fill("wrong-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#login-error")).to_be_visible()
    # Chromium reports the refused sign-in's 401 answer as a console error: that one is expected.
    errors[:] = [e for e in errors if "status of 401" not in e]
    page.get_by_label("Username").fill("browser-tester")
    page.get_by_label("Password").fill(USER_PASSWORD)
    shot(page, "01-login")
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(url + "/")
    expect(page.get_by_role("heading", name="Jobs")).to_be_visible()
    expect(page.locator("#datasets-loading")).to_be_hidden()
    shot(page, "02-home-empty")

    # New dataset from a server folder of class sub-folders.
    page.locator("#main").get_by_role("link", name="New dataset").click()
    expect(page.get_by_role("heading", name="New Image Classification Dataset")).to_be_visible()
    page.get_by_label("Grayscale (1 channel)").check()
    page.get_by_label("Width").fill("28")
    page.get_by_label("Height").fill("28")
    page.get_by_label("Resize transformation").select_option("squash")
    page.get_by_label("Training images").fill(str(folder))
    page.get_by_label("% for validation").fill("20")
    page.get_by_label("% for testing").fill("0")
    page.get_by_label("Dataset name").fill("intensity-browser")
    shot(page, "03-dataset-form")
    page.get_by_role("button", name="Create").click()

    expect(page).to_have_url(re.compile(r"/datasets/\d{8}-\d{6}-[0-9a-z]+$"))
    dataset_id = page.url.rsplit("/", 1)[1]
    expect(page.get_by_role("heading", name="intensity-browser")).to_be_visible()
    loaded_at = page.evaluate("window.__loadedAt")
    shot(page, "04-dataset-submitted")
    status = page.locator("#job-status")
    expect(status).to_have_text(re.compile(r"Done"), timeout=DATASET_BUILD_S * 1000)
    _live_page_kept(page, loaded_at)
    # The details are redrawn from the server when the status changes.
    details = page.locator("#job-details")
    expect(page.locator(".class-table tbody tr")).to_have_count(3)
    expect(page.locator(".class-table .class-name")).to_have_text(["bright", "dark", "mid"])
    expect(page.locator(".class-table thead")).to_contain_text("Validation images")
    expect(details).to_contain_text("28×28")
    expect(details).to_contain_text("1 channel")
    expect(page.get_by_role("img", name="Mean image of the training set")).to_be_visible()
    expect(page.locator("#progress-block")).to_be_hidden()
    expect(page.locator("#abort-form")).to_be_hidden()
    shot(page, "05-dataset-done")

    # New model from this dataset: the standard LeNet, settings that train in seconds on a CPU.
    page.get_by_role("link", name="New model from this dataset").click()
    expect(page.get_by_role("heading", name="New Image Classification Model")).to_be_visible()
    expect(page.locator("#dataset")).to_have_value(dataset_id)
    page.get_by_role("radio", name=re.compile(r"^LeNet")).check()
    page.get_by_label("Training epochs").fill("4")
    page.get_by_label("Batch size").fill("16")
    page.get_by_label("Base learning rate").fill("0.01")
    page.get_by_label("Solver type").select_option("SGD")
    page.get_by_label("Learning rate policy").select_option("fixed")
    page.get_by_label("Random seed").fill("1")
    page.get_by_label("Model name").fill("lenet-browser")
    shot(page, "06-model-form")
    page.get_by_role("button", name="Create").click()

    expect(page).to_have_url(re.compile(r"/models/\d{8}-\d{6}-[0-9a-z]+$"))
    model_id = page.url.rsplit("/", 1)[1]
    expect(page.get_by_role("heading", name="lenet-browser")).to_be_visible()
    loaded_at = page.evaluate("window.__loadedAt")
    expect(page.locator("#combined-chart canvas")).to_have_count(1)
    expect(page.locator("#lr-chart canvas")).to_have_count(1)
    # Meanwhile the home page, in a second tab, follows the model's status live.
    home = page.context.new_page()
    home.goto(url + "/")
    home_loaded_at = home.evaluate("window.__loadedAt")
    home_model = home.locator(f'#models-rows tr[data-job-id="{model_id}"]')
    expect(home_model).to_contain_text("lenet-browser")
    expect(home_model.locator(".badge")).to_have_text(
        re.compile(r"(Initialized|Waiting|Running)$")
    )  # still training, so Done comes live
    page.bring_to_front()
    expect(page.locator("#kn-train-loss")).not_to_have_text("—", timeout=TRAINING_S * 1000)
    shot(page, "07-model-training")
    expect(page.locator("#job-status")).to_have_text(re.compile(r"Done"), timeout=TRAINING_S * 1000)
    _live_page_kept(page, loaded_at)

    trace = page.evaluate("window.__trace")
    assert "Running" in [t["status"] for t in trace], trace
    running = [t for t in trace if t["status"] == "Running" and t["epoch"] not in (None, "—")]
    assert len({t["epoch"] for t in running}) >= 2, f"epoch did not change live: {trace}"
    assert len({t["loss"] for t in running}) >= 2, f"loss did not change live: {trace}"
    expect(page.locator("#kn-epoch")).to_have_text("4 of 4")
    expect(page.locator("#kn-best-acc")).to_have_text(re.compile(r"^\d+\.\d\d % \(epoch [\d.]+\)$"))
    expect(page.locator("#chart-empty")).to_be_hidden()
    height = page.locator("#combined-chart canvas").evaluate(
        "c => c.getBoundingClientRect().height"
    )
    assert height > 200
    expect(page.locator("#snapshot-list option").first).to_have_text("Epoch #4")
    expect(page.locator("#snapshot_epoch")).to_have_value("4")
    expect(page.locator("#classify-button")).to_be_enabled()
    shot(page, "08-model-done")

    # Test a single image: a training image of class "bright".
    page.get_by_label("Image", exact=True).set_input_files(folder / "bright" / "bright_000.png")
    page.get_by_role("button", name="Classify One").click()
    expect(page.get_by_role("heading", name="Classify One")).to_be_visible()
    labels = page.locator(".predictions .pred-label")
    expect(labels.first).to_have_text("bright")
    assert 1 <= labels.count() <= 5
    assert sorted(labels.all_text_contents()) == ["bright", "dark", "mid"]
    expect(page.get_by_role("img", name="The image that was classified")).to_be_visible()
    shot(page, "09-classify-one")

    # Home: both jobs listed, Done; the tab opened during training was updated in place.
    expect(home_model.locator(".badge")).to_have_text("✓ Done")
    assert home.evaluate("window.__loadedAt") == home_loaded_at
    assert home.evaluate("[document.visibilityState, document.hidden]") == ["visible", False]
    home.close()
    page.goto(url + "/")
    dataset_row = page.locator(f'#datasets-rows tr[data-job-id="{dataset_id}"]')
    model_row = page.locator(f'#models-rows tr[data-job-id="{model_id}"]')
    expect(dataset_row).to_contain_text("intensity-browser")
    expect(dataset_row.locator(".badge")).to_have_text("✓ Done")
    expect(model_row).to_contain_text("lenet-browser")
    expect(model_row.locator(".badge")).to_have_text("✓ Done")
    expect(model_row.locator(".progress-cell")).to_have_text("100 %")
    shot(page, "10-home-done")
    assert errors == []
