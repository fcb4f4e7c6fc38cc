"""Chart controls (charts.js + chart-controls.js) on the model page and the comparison page:
log scale, smoothing with the raw series kept faint, zoom and reset, x axis, series toggles,
and a keyboard-only path through the comparison page."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.web import fake_compare, fake_site
from tests.web.fake_compare import RUN_A, RUN_B, RUN_C
from tests.web.fake_modelpage import FRESH, MODEL_RUN_START
from tests.web.fake_site import MODEL, NEW_MODEL, sign_in

pytestmark = pytest.mark.browser

COMPARE = f"/models/compare?ids={RUN_A},{RUN_B},{RUN_C}"

STATE = """(id) => {
    const u = document.getElementById(id).uplotChart.uplot;
    return {
        labels: u.series.slice(1).map((s) => s.label),
        shown: u.series.slice(1).map((s) => s.show),
        drawn: u.series.slice(1).map((s) => Boolean(s.show && s._paths && s._paths.stroke)),
        distr: Object.fromEntries(Object.entries(u.scales).map(([k, s]) => [k, s.distr])),
        xs: u.data[0],
        cols: u.data.slice(1),
        xmin: u.scales.x.min,
        xmax: u.scales.x.max,
    };
}"""


@pytest.fixture
def errors(page: Page) -> list[str]:
    found: list[str] = []
    page.on("console", lambda m: found.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: found.append(str(exc)))
    return found


def state(page: Page, chart_id: str) -> dict:
    return page.evaluate(STATE, chart_id)


def test_model_page_controls(page: Page, site: str, errors: list[str]) -> None:
    """One bar for both model charts: log on the loss axis only, smoothing keeps the raw
    series faint, a series toggle, drag to zoom and reset."""
    sign_in(page, site, "alice")
    page.goto(f"{site}/models/{MODEL}")
    expect(page.locator("#kn-epoch")).to_have_text("3 of 5")
    bars = page.locator(".chart-controls")
    expect(bars).to_have_count(1)
    before = state(page, "combined-chart")
    assert before["labels"] == ["Train loss", "Val loss", "Val accuracy (%)"]
    page.get_by_label("Log scale (y)").check()
    after = state(page, "combined-chart")
    assert after["distr"]["loss"] == 3 and after["distr"]["acc"] == 1
    assert state(page, "lr-chart")["distr"]["y"] == 3

    page.get_by_label("Smoothing").fill("0.8")
    expect(page.locator(".chart-controls output")).to_have_text("0.80")
    smooth = state(page, "combined-chart")
    assert smooth["labels"][3:] == ["Train loss (raw)", "Val loss (raw)", "Val accuracy (%) (raw)"]
    train, raw = smooth["cols"][0], smooth["cols"][3]
    assert [v for v in raw if v is not None] == [v for v in before["cols"][0] if v is not None]
    assert train != raw and all(smooth["drawn"])
    # The raw copies stay out of the legend: one row per real series.
    legend = page.locator("#combined-chart .u-legend .u-series:visible")
    expect(legend).to_have_text(["Train loss", "Val loss", "Val accuracy (%)"])

    page.get_by_label("Val loss", exact=True).uncheck()
    hidden = state(page, "combined-chart")
    assert hidden["shown"] == [True, False, True, True, False, True]

    page.get_by_label("Log scale (y)").uncheck()
    page.get_by_label("Smoothing").fill("0")
    box = page.locator("#combined-chart .u-over").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + 40)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + 40, steps=5)
    page.mouse.up()
    zoomed = state(page, "combined-chart")
    assert zoomed["xmin"] > zoomed["xs"][0] and zoomed["xmax"] < zoomed["xs"][-1]
    page.get_by_role("button", name="Reset zoom").click()
    reset = state(page, "combined-chart")
    assert reset["xmin"] == reset["xs"][0] and reset["xmax"] == reset["xs"][-1]
    assert errors == []


XAXIS = """(id) => {
    const u = document.getElementById(id).uplotChart.uplot;
    const ticks = (splits) => u.axes[0].values(u, splits, 0, 0, 0);
    return [u.series[0].label, u.axes[0].label, ticks([0, 60, 120]), ticks([30, 90])];
}"""


def test_model_page_x_axis_by_iteration_and_wall_time(
    page: Page, site: str, errors: list[str]
) -> None:
    """Both model charts follow the x axis: epoch, iteration, or wall time from the first
    point measured; the live points (epoch 2.1 to 3) are drawn in every mode."""
    sign_in(page, site, "alice")
    page.goto(f"{site}/models/{MODEL}")
    expect(page.locator("#kn-best-acc")).to_contain_text("97.12")  # the last live point is in
    x_axis = page.get_by_label("X axis")
    expect(x_axis.locator("option")).to_have_text(["Epoch", "Iteration", "Wall time"])
    points = fake_site.HISTORY_METRICS + fake_site.LIVE_METRICS
    lr = state(page, "lr-chart")
    assert lr["xs"] == sorted(p["epoch"] for p in points if p["phase"] == "train")

    x_axis.select_option("iteration")
    combined, lr = state(page, "combined-chart"), state(page, "lr-chart")
    assert combined["xs"] == sorted({p["iteration"] for p in points})
    assert lr["xs"] == [p["iteration"] for p in points if p["phase"] == "train"]
    assert combined["cols"][2][-1] == pytest.approx(97.12)  # live val accuracy, iteration 300
    assert page.evaluate(XAXIS, "lr-chart")[:2] == ["Iteration", "Iteration"]

    x_axis.select_option("time")
    combined, lr = state(page, "combined-chart"), state(page, "lr-chart")
    start = min(p["occurred"] for p in points)
    assert combined["xs"] == sorted(p["occurred"] - start for p in points)
    assert combined["xs"][0] == 0 and lr["xs"][-1] == points[-2]["occurred"] - start
    assert start == MODEL_RUN_START + 20  # iteration 10 was the first measured
    for chart in ("combined-chart", "lr-chart"):
        # One unit per axis: minutes from 2 min on, never "60 s" beside "2 min".
        assert page.evaluate(XAXIS, chart) == [
            "Wall time",
            "Wall time",
            ["0 min", "1 min", "2 min"],
            ["30 s", "90 s"],
        ]
    # Zoom and reset work on the time axis too.
    page.get_by_role("button", name="Reset zoom").click()
    reset = state(page, "combined-chart")
    assert (reset["xmin"], reset["xmax"]) == (0, combined["xs"][-1])

    x_axis.select_option("epoch")
    assert state(page, "lr-chart")["xs"] == sorted(
        p["epoch"] for p in points if p["phase"] == "train"
    )
    assert errors == []


def push_fresh(page: Page, site: str, kind: str, **payload: object) -> None:
    """One live event to the open FRESH model page."""
    answer = page.request.post(
        f"{site}/test/modelpage/events", data={"kind": kind, "payload": payload}
    )
    assert answer.ok and answer.json()["listeners"] >= 1


def test_model_page_wall_time_arrives_with_live_points(
    page: Page, site: str, errors: list[str]
) -> None:
    """A run without points offers epoch only; live points that carry their time add
    Iteration and Wall time, and a point arriving in the wall-time view is drawn there."""
    sign_in(page, site, "alice")
    page.goto(f"{site}/models/{FRESH}")
    expect(page.locator("#live-state")).to_have_text("Live")
    expect(page.get_by_label("X axis")).to_be_hidden()  # nothing to choose between yet
    t0 = fake_site.NOW
    point = {"phase": "train", "values": {"loss": 2.0, "learning_rate": 0.01}}
    push_fresh(page, site, "metric", epoch=0.1, iteration=10, occurred=t0, **point)
    x_axis = page.get_by_label("X axis")
    expect(x_axis.locator("option")).to_have_text(["Epoch", "Iteration", "Wall time"])
    x_axis.select_option("time")
    push_fresh(page, site, "metric", epoch=0.2, iteration=20, occurred=t0 + 30, **point)
    val = {"phase": "val", "values": {"loss": 1.0, "accuracy": 0.5}}
    push_fresh(page, site, "metric", epoch=0.2, iteration=20, occurred=t0 + 31, **val)
    expect(page.locator("#kn-val-loss")).to_have_text("1")
    assert state(page, "lr-chart")["xs"] == [0, 30]
    combined = state(page, "combined-chart")
    assert combined["xs"] == [0, 30, 31] and combined["cols"][2] == [None, None, 50]
    expect(x_axis).to_have_value("time")
    assert errors == []


def test_compare_controls_drive_all_four_charts(page: Page, site: str, errors: list[str]) -> None:
    """X axis by iteration, smoothing and a series toggle apply to every chart."""
    fake_compare.POLLS["count"] = 0
    sign_in(page, site, "alice")
    page.goto(site + COMPARE)
    expect(page.locator("#results-table tbody tr")).to_have_count(3)
    page.get_by_label("X axis").select_option("iteration")
    train = state(page, "chart-train-loss")
    assert train["xs"][0] == 25 and train["xs"][-1] >= 150
    assert state(page, "chart-val-acc")["xs"][0] == 100
    # Wall time from each run's first point: the runs start together at 0.
    page.get_by_label("X axis").select_option("time")
    timed = state(page, "chart-train-loss")
    assert timed["xs"][0] == 0 and all(col[0] is not None for col in timed["cols"])
    ticks = page.evaluate(
        """() => {
            const u = document.getElementById("chart-train-loss").uplotChart.uplot;
            return [u.series[0].label, u.axes[0].values(u, [0, 1800, 3600, 5400, 7200], 0, 0, 0)];
        }"""
    )
    assert ticks == ["Wall time", ["0 h", "0.5 h", "1 h", "1.5 h", "2 h"]]
    page.get_by_label("X axis").select_option("iteration")
    raw_lr = state(page, "chart-lr")["cols"]
    page.get_by_label("Smoothing").fill("0.5")
    for chart in ("chart-train-loss", "chart-val-loss", "chart-val-acc"):
        assert len(state(page, chart)["labels"]) == 6  # 3 runs, each smoothed + raw
    # The learning rate is never smoothed: it steps, and an average would draw a gradual
    # decay that never happened. Its chart keeps one unsmoothed line per run.
    lr = state(page, "chart-lr")
    assert len(lr["labels"]) == 3 and lr["cols"] == raw_lr
    name = fake_compare.RUNS[RUN_A]["name"]
    page.get_by_label(name, exact=True).uncheck()
    hidden = {}
    for chart in ("chart-train-loss", "chart-lr"):
        s = state(page, chart)
        hidden[chart] = [
            label for label, shown in zip(s["labels"], s["shown"], strict=True) if not shown
        ]
    assert hidden == {"chart-train-loss": [name, f"{name} (raw)"], "chart-lr": [name]}
    assert errors == []


def tab_to(page: Page, selector: str, limit: int = 80) -> None:
    """Press Tab until `selector` has the focus (keyboard only, as a user would)."""
    target = page.locator(selector)
    for _ in range(limit):
        page.keyboard.press("Tab")
        if target.evaluate("(el) => el === document.activeElement"):
            return
    raise AssertionError(f"Tab never reached {selector}")


def test_keyboard_only_through_the_comparison(page: Page, site: str, errors: list[str]) -> None:
    """From the shared link on, keyboard only: follow through the runs table, toggle a series,
    change the smoothing and the x axis."""
    fake_compare.POLLS["count"] = 0
    sign_in(page, site, "alice")
    page.goto(site + COMPARE)
    expect(page.locator("#results-table tbody tr")).to_have_count(3)
    page.locator("body").focus()
    tab_to(page, f'#results-table a[href="/models/{RUN_B}"]')  # the run links come first
    name = fake_compare.RUNS[RUN_C]["name"]
    series_box = page.get_by_label(name, exact=True)
    tab_to(page, ".chart-controls .cc-log")
    page.keyboard.press("Space")
    assert state(page, "chart-val-loss")["distr"]["y"] == 3
    page.keyboard.press("Tab")  # to the smoothing slider
    expect(page.locator(".chart-controls .cc-smooth")).to_be_focused()
    for _ in range(30):
        page.keyboard.press("ArrowRight")
    expect(page.locator(".chart-controls output")).to_have_text("0.30")
    page.keyboard.press("Tab")  # to the x axis
    expect(page.locator(".chart-controls .cc-x")).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(page.locator(".chart-controls .cc-x")).to_have_value("iteration")
    assert state(page, "chart-train-loss")["xs"][0] == 25
    tab_to(page, f'.chart-controls input[data-label="{name}"]')
    page.keyboard.press("Space")
    expect(series_box).not_to_be_checked()
    shown = state(page, "chart-val-acc")
    assert not shown["shown"][shown["labels"].index(name)]
    assert errors == []


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width,height", [(390, 844), (1280, 800)])
def test_model_page_controls_fit(
    page: Page, site: str, screenshots, scheme: str, width: int, height: int
) -> None:
    """The controls bar fits a phone (no horizontal scroll); every key number above the
    charts stays on one line ("97.12 % (epoch 3)" used to wrap); screenshots to look at."""
    page.set_viewport_size({"width": width, "height": height})
    page.emulate_media(color_scheme=scheme)  # type: ignore[arg-type]
    sign_in(page, site, "alice")
    page.goto(f"{site}/models/{MODEL}")
    expect(page.locator("#kn-epoch")).to_have_text("3 of 5")
    expect(page.locator("#kn-best-acc")).to_have_text("97.12 % (epoch 3)")
    lines = page.evaluate(
        """() => [...document.querySelectorAll("#key-numbers dd")].map((dd) => {
            const range = document.createRange();
            range.selectNodeContents(dd);
            return [dd.id, range.getClientRects().length];
        })"""
    )
    assert all(count == 1 for _, count in lines), lines
    page.get_by_label("Smoothing").fill("0.6")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.locator(".chart-controls").screenshot(
        path=screenshots / f"chart-controls-{scheme}-{width}.png"
    )
    page.locator("#combined-chart").scroll_into_view_if_needed()
    page.screenshot(path=screenshots / f"model-charts-{scheme}-{width}.png")


def test_keyboard_only_from_the_job_list(page: Page, site: str, errors: list[str]) -> None:
    """Home → tick two models → Compare → toggle a series, all from the keyboard."""
    sign_in(page, site, "alice")
    page.goto(f"{site}/")
    if page.locator("#sel-compare").count() == 0:
        pytest.skip("the job list has no Compare button (the home page's selection is not in)")
    expect(page.locator(f'#models-rows tr[data-job-id="{NEW_MODEL}"]')).to_have_count(1)
    page.locator("body").focus()
    for name in ("lenet-mnist", "fresh-model"):
        tab_to(page, f'#models-rows input[aria-label="Select {name}"]')
        page.keyboard.press("Space")
    tab_to(page, "#sel-compare")
    page.keyboard.press("Enter")
    page.wait_for_url("**/models/compare?ids=*")
    expect(page.locator("#results-table tbody tr")).to_have_count(2)
    expect(page.locator('#settings-diff tbody tr[data-setting="network"]')).to_have_count(1)
    tab_to(page, '.chart-controls input[data-label="lenet-mnist"]')
    page.keyboard.press("Space")
    s = state(page, "chart-train-loss")
    assert s["shown"][s["labels"].index("lenet-mnist")] is False
    assert errors == []


def test_zoom_holds_while_data_arrives(page: Page, site: str, errors: list[str]) -> None:
    """A drag zoom is kept when the poll brings new epochs; Reset zoom shows them all."""
    fake_compare.POLLS["count"] = 0
    sign_in(page, site, "alice")
    page.goto(site + COMPARE)
    expect(page.locator("#results-table tbody tr")).to_have_count(3)
    page.locator("#chart-val-loss").scroll_into_view_if_needed()
    box = page.locator("#chart-val-loss .u-over").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] * 0.1, box["y"] + 30)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + 30, steps=5)
    page.mouse.up()
    zoomed = state(page, "chart-val-loss")
    assert zoomed["xmax"] < zoomed["xs"][-1]
    row_c = page.locator(f'#results-table tr[data-run-id="{RUN_C}"] .badge')
    expect(row_c).to_contain_text("Done", timeout=15_000)  # the poll brought epochs 4-6
    after = state(page, "chart-val-loss")
    assert after["cols"][2][-1] is not None  # RUN_C (third colour) reached epoch 6
    assert (after["xmin"], after["xmax"]) == (zoomed["xmin"], zoomed["xmax"])
    page.get_by_role("button", name="Reset zoom").click()
    reset = state(page, "chart-val-loss")
    assert (reset["xmin"], reset["xmax"]) == (reset["xs"][0], reset["xs"][-1])
    assert errors == []


def test_no_zoom_hint_without_a_mouse(browser: Browser, site: str) -> None:
    """uPlot zooms by mouse drag only: a touch-only phone is not told to drag, nor offered Reset."""
    for touch in (False, True):
        context = browser.new_context(
            viewport={"width": 390, "height": 844}, has_touch=touch, is_mobile=touch
        )
        page = context.new_page()
        sign_in(page, site, "alice")
        page.goto(f"{site}/models/{MODEL}")
        expect(page.locator(".chart-controls")).to_be_visible()
        for part in (".cc-hint", ".cc-reset"):
            if touch:
                expect(page.locator(part)).to_be_hidden()
            else:
                expect(page.locator(part)).to_be_visible()
        context.close()
