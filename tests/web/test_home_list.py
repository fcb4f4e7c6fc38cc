"""The home job list in Chromium: groups, search / filters / sort kept in the URL, metric
columns, a live sparkline, tags, multi-select Compare / Delete / Abort, and who sees what."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.web import fake_home
from tests.web.fake_home import DS_BOB, GROUP, M_A, M_B, M_BOB, M_LATE, M_OLD, M_RUN
from tests.web.fake_site import sign_in
from tests.web.test_contrast import contrast_failures

pytestmark = pytest.mark.browser
HOME = "/test/home"


@pytest.fixture(autouse=True)
def fresh_jobs() -> Iterator[None]:
    fake_home.reset()
    yield
    fake_home.reset()


@pytest.fixture
def errors(page: Page) -> list[str]:
    found: list[str] = []
    page.on("console", lambda m: found.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: found.append(str(exc)))
    return found


def row(page: Page, job_id: str):
    return page.locator(f'tr[data-job-id="{job_id}"]')


def visible_models(page: Page) -> list[str]:
    return page.locator("#models-table tr[data-job-id]:visible").evaluate_all(
        "rows => rows.map(r => r.dataset.jobId)"
    )


def open_home(page: Page, site: str, query: str = "", user: str = "alice") -> None:
    if user:
        sign_in(page, site, user)
    page.goto(site + HOME + query)
    expect(row(page, M_RUN)).to_have_count(1)


def test_groups_are_sections_with_a_compare_link(page: Page, site: str, errors: list[str]) -> None:
    open_home(page, site)
    group = page.locator(f'#models-table tbody[data-group="{GROUP}"]')
    expect(group.locator("tr[data-job-id]")).to_have_count(2)  # listed together
    link = group.get_by_role("link", name=f"Compare the models of group {GROUP}")
    expect(link).to_have_attribute("href", f"/models/compare?group={GROUP}")
    expect(page.locator('#datasets-table tbody[data-group="vision"]')).to_contain_text("cifar-bob")
    expect(row(page, DS_BOB).locator(".owner-cell")).to_have_text("bob")
    assert errors == []


def test_a_job_created_meanwhile_joins_its_group(page: Page, site: str) -> None:
    """Its first live event names no group: the list re-reads the job and files it there."""
    open_home(page, site, "?late=1")
    late = page.locator(f'#models-table tbody[data-group="{GROUP}"] tr[data-job-id="{M_LATE}"]')
    expect(late).to_have_count(1, timeout=10_000)
    expect(late.locator(".owner-cell")).to_have_text("alice")
    expect(page.locator("#models-count")).to_have_text("(6)")


def test_search_filters_and_sort_live_in_the_url(page: Page, site: str, errors: list[str]) -> None:
    """Typing, a filter and a header click change the rows and the URL; reload and Back restore."""
    open_home(page, site)
    expect(page.locator("#models-count")).to_have_text("(5)")
    page.fill("#f-q", "LENET")
    expect(page.locator("#models-count")).to_have_text("(3 of 5)")
    assert sorted(visible_models(page)) == sorted([M_A, M_B, M_OLD])
    page.select_option("#f-owner", "bob")
    expect(page.locator("#models-count")).to_have_text("(0 of 5)")
    expect(page.locator("#models-empty")).to_have_text("Nothing here matches the filters.")
    assert parse_qs(page.url.split("?", 1)[1]) == {"q": ["LENET"], "owner": ["bob"]}
    page.go_back()  # the owner filter was one history step
    expect(page.locator("#f-owner")).to_have_value("")
    expect(page.locator("#models-count")).to_have_text("(3 of 5)")
    page.fill("#f-q", "")
    page.locator('th[data-col="best_val_accuracy"] button').click()
    header = page.locator('#models-table th[data-col="best_val_accuracy"]')
    expect(header).to_have_attribute("aria-sort", "descending")
    # Grouped rows stay together: ungrouped first (best first, no metric last), then the group.
    assert visible_models(page) == [M_BOB, M_RUN, M_OLD, M_B, M_A]
    page.locator('th[data-col="best_val_accuracy"] button').click()
    expect(header).to_have_attribute("aria-sort", "ascending")
    assert visible_models(page) == [M_RUN, M_BOB, M_OLD, M_A, M_B]
    page.select_option("#f-network", "alexnet")
    assert "sort=best_val_accuracy" in page.url and "network=alexnet" in page.url
    page.reload()
    expect(row(page, M_RUN)).to_have_count(1)
    expect(page.locator("#f-network")).to_have_value("alexnet")
    expect(header).to_have_attribute("aria-sort", "ascending")
    expect(page.locator("#models-count")).to_have_text("(2 of 5)")
    assert visible_models(page) == [M_RUN, M_BOB]
    page.go_back()
    expect(page.locator("#f-network")).to_have_value("")
    expect(page.locator("#models-count")).to_have_text("(5)")
    assert errors == []


def test_metric_columns_and_the_running_sparkline_update_live(page: Page, site: str) -> None:
    open_home(page, site)
    best = row(page, M_B)
    expect(best.locator(".acc-cell")).to_have_text("95.10 %")
    expect(best.locator(".loss-cell")).to_have_text("0.21")
    expect(best.locator(".duration-cell")).to_have_text("15 min 05 s")
    expect(row(page, M_OLD).locator(".acc-cell")).to_have_text("—")
    running = row(page, M_RUN)
    # Three progress events, then one throttled re-read: six points where there were three.
    expect(running.locator("svg.sparkline")).to_have_attribute(
        "aria-label", "Train loss from 2.3 to 0.6656", timeout=10_000
    )
    expect(running.locator(".loss-cell")).to_have_text("0.6656")
    expect(running.locator(".progress-cell")).to_contain_text("60 %")


def test_owner_edits_tags_and_a_chip_filters_by_its_tag(page: Page, site: str) -> None:
    open_home(page, site)
    expect(row(page, M_RUN).locator(".tag-edit")).to_have_count(0)  # bob's job
    page.get_by_role("button", name="Edit tags of lenet-lr-0.1").click()
    field = page.get_by_role("textbox", name="Tags of lenet-lr-0.1")
    expect(field).to_be_focused()
    field.fill("baseline,  keep me , Baseline")
    with page.expect_request(lambda r: r.method == "PUT" and M_A in r.url) as sent:
        field.press("Enter")
    assert parse_qs(sent.value.post_data or "") == {"job_tags": ["baseline,keep me"]}
    expect(row(page, M_A).locator(".tag-chip")).to_have_text(["baseline", "keep me"])
    expect(page.get_by_role("button", name="Edit tags of lenet-lr-0.1")).to_be_focused()
    row(page, M_B).get_by_role("button", name="sweep").click()
    assert "tag=sweep" in page.url
    expect(page.locator("#f-tag")).to_have_value("sweep")
    assert sorted(visible_models(page)) == sorted([M_B, M_BOB])


def test_select_by_keyboard_then_compare(page: Page, site: str) -> None:
    open_home(page, site)
    page.get_by_label("Select lenet-lr-0.1").focus()
    page.keyboard.press("Space")
    expect(page.locator("#selection-count")).to_have_text("1 selected")
    expect(page.locator("#sel-compare")).to_be_disabled()
    page.get_by_label("Select lenet-lr-0.01").focus()
    page.keyboard.press("Space")
    compare = page.locator("#sel-compare")
    expect(compare).to_be_enabled()
    compare.focus()
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/models/compare?ids={M_A},{M_B}")


def test_delete_and_abort_report_each_jobs_failure_in_its_row(page: Page, site: str) -> None:
    """One dialog for the lot; alice's job goes, bob's says 403 where it is."""
    open_home(page, site)
    page.get_by_label("Select old-lenet").check()
    page.get_by_label("Select bob-alexnet-done").check()
    page.locator("#sel-delete").click()
    dialog = page.locator("#bulk-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#bulk-title")).to_have_text("Delete 2 jobs?")
    expect(page.locator("#bulk-cancel")).to_be_focused()
    page.locator("#bulk-confirm").click()
    expect(row(page, M_OLD)).to_have_count(0)
    expect(row(page, M_BOB).locator(".row-error")).to_contain_text("403")
    expect(row(page, M_BOB).locator(".row-error")).to_contain_text("permission to delete")
    expect(page.locator("#selection-result")).to_have_text(
        "1 deleted, 1 failed (see the marked rows)."
    )
    assert M_OLD not in fake_home.JOBS and M_BOB in fake_home.JOBS

    page.locator("#sel-clear").click()
    page.get_by_label("Select alexnet-bob").check()
    page.locator("#sel-abort").click()
    expect(page.locator("#bulk-title")).to_have_text("Abort 1 job?")
    page.keyboard.press("Escape")  # cancelled: nothing sent
    expect(page.locator("#bulk-dialog")).to_be_hidden()
    assert fake_home.JOBS[M_RUN]["status"] == "Running"
    page.locator("#sel-abort").click()
    page.locator("#bulk-confirm").click()
    expect(row(page, M_RUN).locator(".row-error")).to_contain_text("403")


@pytest.mark.parametrize(("user", "shown"), [("", 0), ("vera", 0), ("alice", 1)])
def test_upload_pretrained_only_for_those_who_may_create(
    page: Page, site: str, user: str, shown: int
) -> None:
    open_home(page, site, user=user)
    expect(page.locator("#upload-pretrained")).to_have_count(shown)
    expect(page.locator("#sel-delete")).to_have_count(shown)
    expect(page.locator(".tag-edit")).to_have_count(4 * shown)  # alice's 3 models, 1 dataset
    upload = "upload one below" if shown else "No pretrained models yet.$"
    expect(page.locator("#pretrained_models-empty")).to_have_text(re.compile(upload))


def test_screens_at_phone_and_desktop_in_both_themes(
    browser: Browser, site: str, screenshots: Path
) -> None:
    for scheme in ("light", "dark"):
        for label, (width, height) in {"phone": (390, 844), "desktop": (1280, 800)}.items():
            ctx = browser.new_context(
                viewport={"width": width, "height": height}, color_scheme=scheme
            )
            page = ctx.new_page()
            open_home(page, site, "?sort=best_val_accuracy")
            page.get_by_label("Select lenet-lr-0.1").check()
            page.get_by_label("Select lenet-lr-0.01").check()
            expect(row(page, M_RUN).locator("svg.sparkline")).to_have_count(1)
            page.get_by_role("button", name="Edit tags of lenet-lr-0.1").click()
            assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
            page.screenshot(path=screenshots / f"home-list-{scheme}-{label}.png", full_page=True)
            failures = contrast_failures(page, site)
            assert failures == [], f"{scheme} {label}: {failures}"
            ctx.close()
