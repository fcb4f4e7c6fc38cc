"""The comparison page in Chromium: three runs overlaid, the settings that differ, the sweep
view, live updates while a run trains, bad links, phone width and both themes."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.web import fake_compare
from tests.web.fake_compare import GROUP, RUN_A, RUN_B, RUN_C
from tests.web.fake_site import sign_in
from tests.web.test_contrast import contrast_failures

pytestmark = pytest.mark.browser

URL = f"/models/compare?ids={RUN_A},{RUN_B},{RUN_C}"
CHARTS = ("train-loss", "val-loss", "val-acc", "lr")


@pytest.fixture
def errors(page: Page) -> list[str]:
    found: list[str] = []
    page.on("console", lambda m: found.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: found.append(str(exc)))
    return found


def open_compare(page: Page, site: str, url: str = URL) -> None:
    fake_compare.POLLS["count"] = 0  # RUN_C trains again from epoch 3
    sign_in(page, site, "alice")
    page.goto(site + url)
    expect(page.locator("#results-table tbody tr")).to_have_count(3)


def series_state(page: Page, chart: str) -> dict:
    """What uPlot drew: series labels, which have a stroke path, the x data, the y scale."""
    return page.evaluate(
        """(id) => {
            const u = document.getElementById(id).uplotChart.uplot;
            return {
                labels: u.series.slice(1).map((s) => s.label),
                drawn: u.series.slice(1).map((s) => Boolean(s.show && s._paths && s._paths.stroke)),
                shown: u.series.slice(1).map((s) => s.show),
                xs: u.data[0],
                first: u.data[1],
                distr: u.scales.y.distr,
                xmin: u.scales.x.min,
            };
        }""",
        f"chart-{chart}",
    )


def test_three_runs_overlaid_with_the_settings_that_differ(
    page: Page, site: str, errors: list[str]
) -> None:
    """Four charts with one drawn series per run, best first, only lr and batch size differ,
    the sweep view highlights the best run, and the training run turns Done live."""
    open_compare(page, site)
    rows = page.locator("#results-table tbody tr")
    expect(rows.nth(0)).to_have_attribute("data-run-id", RUN_B)  # best val accuracy first
    expect(rows.nth(0)).to_contain_text("96.88 % (epoch 6)")
    expect(rows.nth(0).locator("a")).to_have_attribute("href", f"/models/{RUN_B}")
    names = [fake_compare.RUNS[i]["name"] for i in (RUN_B, RUN_A, RUN_C)]
    for chart in CHARTS:
        state = series_state(page, chart)
        assert state["labels"] == names and all(state["drawn"]), (chart, state)
    diff = page.locator("#settings-diff tbody tr")
    expect(diff).to_have_count(2)
    assert diff.evaluate_all("rows => rows.map(r => r.dataset.setting)") == [
        "learning_rate",
        "batch_size",
    ]
    expect(page.locator("#settings-diff thead th")).to_have_count(4)
    expect(page.locator('#same-list [data-setting="network"] dd')).to_have_text("lenet")
    expect(page.locator('#same-list [data-setting="learning_rate"]')).to_have_count(0)
    expect(page.locator("#settings-same")).not_to_have_attribute("open", "")
    expect(page.locator("#sweep-plot polyline")).to_have_count(3)
    expect(page.locator("#sweep-plot polyline.sweep-best")).to_have_attribute("data-run-id", RUN_B)
    expect(page.locator("#sweep-plot .sweep-label")).to_have_text(
        ["Base learning rate (log)", "Batch size", "Best val accuracy (%)"]
    )
    # RUN_C was training: the poll brings its new epochs and its end.
    expect(page.locator("#compare-live")).to_contain_text("1 of 3 runs still training")
    row_c = page.locator(f'#results-table tr[data-run-id="{RUN_C}"]')
    expect(row_c.locator(".badge")).to_contain_text("Done", timeout=15_000)
    expect(page.locator("#compare-live")).to_have_text("")
    assert len(series_state(page, "val-acc")["xs"]) == 6
    assert errors == []


def test_group_link_and_bad_links(page: Page, site: str, errors: list[str]) -> None:
    """?group= shows the group's runs; unknown ids are named; one id asks for two; too many
    ids is a 400 naming the limit."""
    open_compare(page, site, f"/models/compare?group={GROUP}")
    expect(page.locator("#compare-title")).to_have_text(GROUP)
    page.goto(f"{site}/models/compare?ids={RUN_A},{RUN_B},gone-1")
    expect(page.locator("#compare-missing")).to_contain_text("gone-1")
    expect(page.locator("#results-table tbody tr")).to_have_count(2)
    page.goto(f"{site}/models/compare?ids={RUN_A},nope")
    expect(page.locator("#compare-too-few")).to_contain_text("Pick at least two")
    expect(page.locator("#compare-missing")).to_contain_text("nope")
    expect(page.locator("#results-card")).to_be_hidden()
    many = ",".join(f"x{i}" for i in range(21))
    response = page.goto(f"{site}/models/compare?ids={many}")
    assert response is not None and response.status == 400
    expect(page.locator("#compare-error")).to_contain_text("At most 20 models")
    assert [e for e in errors if "status of 400" not in e] == []


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width,height", [(390, 844), (1280, 800)])
def test_screens(
    page: Page, site: str, screenshots: Path, scheme: str, width: int, height: int
) -> None:
    """No horizontal scroll at phone width; screenshots to look at."""
    page.set_viewport_size({"width": width, "height": height})
    page.emulate_media(color_scheme=scheme)  # type: ignore[arg-type]
    open_compare(page, site)
    page.locator("#settings-same summary").click()
    expect(page.locator("#compare-live")).to_have_text("", timeout=15_000)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    if width == 390:  # the runs table scrolls in its card: a keyboard can reach and scroll it
        region = page.get_by_role("region", name="Runs table")
        expect(region).to_have_attribute("tabindex", "0")
        assert region.evaluate("(el) => el.scrollWidth > el.clientWidth")
    # Text contrast of the page as drawn (tables, sweep labels, controls), axe-core's rule.
    failures = contrast_failures(page, site)
    assert not failures, "\n".join(f"{f['target']}: {f['why']}" for f in failures)
    page.screenshot(path=screenshots / f"compare-{scheme}-{width}.png", full_page=True)


def test_sweep_fits_a_phone_or_scrolls_in_its_card(
    page: Page, site: str, screenshots: Path, errors: list[str]
) -> None:
    """At 390 px the parallel coordinates are drawn at the card's width: every axis and label
    inside it, nothing cut. With more axes than fit, the plot scrolls inside its card, and that
    scroller can be focused and is named."""
    page.set_viewport_size({"width": 390, "height": 844})
    open_compare(page, site)
    card = page.locator("#sweep-card")
    card.scroll_into_view_if_needed()
    scroller = page.locator("#sweep-plot .sweep-scroll")
    fits = scroller.evaluate("(el) => el.scrollWidth <= el.clientWidth")
    assert fits, "the sweep plot is cut at 390 px"
    inner = card.evaluate(
        """(card) => {
            const box = card.getBoundingClientRect();
            return [...card.querySelectorAll(".sweep-label, .sweep-tick, .sweep-axis")].every((n) => {
                const r = n.getBoundingClientRect();
                return r.left >= box.left && r.right <= box.right;
            });
        }"""
    )
    assert inner, "a sweep label or axis lies outside its card"
    expect(page.locator("#sweep-plot .sweep-label")).to_have_text(
        ["Base learning rate (log)", "Batch size", "Best val accuracy (%)"]
    )
    assert scroller.get_attribute("tabindex") is None  # nothing to scroll: no extra tab stop
    card.screenshot(path=screenshots / "compare-sweep-390.png")

    # Six settings that differ: too many axes for 390 px.
    crowded = page.evaluate(
        """async () => {
            const { sweepPlot } = await import("/static/js/sweep.js");
            const host = document.getElementById("sweep-plot");
            const runs = [0, 1, 2].map((i) => ({
                id: `r${i}`, name: `run ${i}`, summary: { best_val_accuracy: 0.8 + i / 20 },
            }));
            const differ = [1, 2, 3, 4, 5, 6].map((k) => ({
                key: `s${k}`, label: `Setting number ${k}`, numeric: true, values: [k, 2 * k, 3 * k],
            }));
            sweepPlot(host, { runs, best_run: "r2", settings: { differ, same: [] } });
            const s = host.querySelector(".sweep-scroll");
            return {
                scrolls: s.scrollWidth > s.clientWidth,
                tabindex: s.getAttribute("tabindex"),
                label: s.getAttribute("aria-label"),
                page: document.documentElement.scrollWidth <= window.innerWidth,
            };
        }"""
    )
    assert crowded == {
        "scrolls": True,
        "tabindex": "0",
        "label": "Parallel coordinates (scrolls sideways)",
        "page": True,
    }
    scroller.focus()
    expect(scroller).to_be_focused()
    card.screenshot(path=screenshots / "compare-sweep-crowded-390.png")
    assert errors == []


def view_in_url(page: Page) -> dict[str, str]:
    return page.evaluate(
        "() => Object.fromEntries([...new URLSearchParams(location.search)].map(([k, v]) => [k, v]))"
    )


def test_chart_view_kept_in_the_url(page: Page, site: str, errors: list[str]) -> None:
    """Each change of the charts' view replaces the URL's query (ids kept); that URL opened
    afresh shows the same view; bad values and unknown runs in a link are ignored."""
    open_compare(page, site)
    history_length = page.evaluate("history.length")
    page.get_by_label("X axis").select_option("iteration")
    page.get_by_label("Smoothing").fill("0.6")
    page.get_by_label("Log scale (y)").check()
    page.get_by_label(fake_compare.RUNS[RUN_B]["name"], exact=True).uncheck()
    assert view_in_url(page) == {
        "ids": f"{RUN_A},{RUN_B},{RUN_C}",
        "x": "iteration",
        "smooth": "0.6",
        "log": "1",
        "hide": RUN_B,
    }
    assert page.evaluate("history.length") == history_length  # replaced, not pushed
    shared = page.url

    fresh = page.context.new_page()
    fresh.goto(shared)
    expect(fresh.locator("#results-table tbody tr")).to_have_count(3)
    expect(fresh.get_by_label("X axis")).to_have_value("iteration")
    expect(fresh.get_by_label("Smoothing")).to_have_value("0.6")
    expect(fresh.locator(".chart-controls output")).to_have_text("0.60")
    expect(fresh.get_by_label("Log scale (y)")).to_be_checked()
    expect(fresh.get_by_label(fake_compare.RUNS[RUN_B]["name"], exact=True)).not_to_be_checked()
    s = series_state(fresh, "val-loss")
    assert s["distr"] == 3 and s["xs"][0] == 100  # log y, by iteration
    assert len(s["labels"]) == 6  # smoothed + raw
    b = fake_compare.RUNS[RUN_B]["name"]
    assert [label for label, shown in zip(s["labels"], s["shown"], strict=True) if not shown] == [
        b,
        f"{b} (raw)",
    ]
    fresh.close()

    # A link with bad values: the defaults stand and the URL drops what it could not use.
    open_compare(page, site, f"{URL}&x=furlongs&smooth=7&log=yes&hide=nosuchrun")
    expect(page.get_by_label("X axis")).to_have_value("epoch")
    expect(page.locator(".chart-controls output")).to_have_text("off")
    expect(page.get_by_label("Log scale (y)")).not_to_be_checked()
    assert view_in_url(page) == {"ids": f"{RUN_A},{RUN_B},{RUN_C}"}
    assert all(series_state(page, "val-loss")["shown"])
    assert errors == []
