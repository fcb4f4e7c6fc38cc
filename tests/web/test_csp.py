"""Every page works under the gateway's Content-Security-Policy: Chromium reports no violation
(no inline script but the hashed import map, no inline style or handler) and the page runs."""

from __future__ import annotations

from typing import Any

import pytest

from tests.web.fake_site import DS_DONE, MODEL, sign_in

pytestmark = pytest.mark.browser

PAGES = [
    "/",
    f"/datasets/{DS_DONE}",
    f"/models/{MODEL}",
    "/cluster",
    "/datasets/images/classification/new",
    "/models/images/classification/new",
    "/test/classify",
    "/test/dataset-errors",
    "/test/model-errors",
]


def watch_csp(page: Any) -> list[str]:
    """Chromium logs each refused script, style or handler as a console error."""
    found: list[str] = []

    def on_console(message: Any) -> None:
        if "Content Security Policy" in message.text:
            found.append(message.text)

    page.on("console", on_console)
    return found


@pytest.mark.parametrize("path", PAGES)
def test_pages_run_under_the_csp(page: Any, site: str, path: str) -> None:
    """The page is served with the CSP, renders its scripts' work, and nothing is refused."""
    sign_in(page, site, "alice")
    violations = watch_csp(page)
    response = page.goto(f"{site}{path}")
    assert "script-src 'self' 'sha256-" in response.headers["content-security-policy"]
    page.wait_for_load_state("networkidle")
    # base.js ran (module scripts and the import map allowed): the theme button is labelled.
    assert page.get_attribute("#theme-toggle", "aria-label").startswith("Colour theme")
    assert violations == []


def test_the_login_page_runs_under_the_csp(page: Any, site: str) -> None:
    """Anonymous too: the login form's page loads without a refused resource."""
    violations = watch_csp(page)
    page.goto(f"{site}/login")
    page.wait_for_load_state("networkidle")
    assert violations == []


def test_an_inline_script_would_be_refused(page: Any, site: str) -> None:
    """The check can fail: a script injected inline is blocked and reported."""
    violations = watch_csp(page)
    page.goto(f"{site}/login")
    page.evaluate(
        "() => { const s = document.createElement('script');"
        " s.textContent = 'window.injected = 1'; document.head.append(s); }"
    )
    assert page.evaluate("() => window.injected") is None
    assert violations and "script" in violations[0]


def test_bar_sizes_survive_the_csp(page: Any, site: str) -> None:
    """Sizes once set by style attributes are applied from data-* by base.js."""
    sign_in(page, site, "alice")
    page.goto(f"{site}/test/classify")
    page.wait_for_load_state("networkidle")
    widths = page.eval_on_selector_all(
        ".bar-fill[data-width]", "els => els.map(e => e.style.width)"
    )
    assert widths and all(w.endswith("%") for w in widths)
