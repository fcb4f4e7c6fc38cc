"""Playwright helpers for end-to-end tests: Debian's Chromium, screenshots, a live-change trace."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"

# Records every change of the job status badge and the model page's key numbers, from the
# first DOM parse on, so a test can tell "changed live while Running" from "drawn at load".
TRACE_SCRIPT = """
window.__trace = [];
window.__loadedAt = Date.now();
document.addEventListener("DOMContentLoaded", () => {
  const read = () => ({
    status: document.getElementById("job-status")?.dataset.status ?? null,
    epoch: document.getElementById("kn-epoch")?.textContent ?? null,
    loss: document.getElementById("kn-train-loss")?.textContent ?? null,
    t: Date.now(),
  });
  let last = "";
  const record = () => {
    const now = read();
    const key = `${now.status}|${now.epoch}|${now.loss}`;
    if (key !== last) { last = key; window.__trace.push(now); }
  };
  record();
  new MutationObserver(record).observe(document.body,
    { subtree: true, childList: true, characterData: true, attributes: true });
});
"""


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """Launch Debian's Chromium (never `playwright install`), keeping CLI options like --headed."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} missing: apt-get install chromium (never `playwright install`)")
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


def shot(page: Page, name: str) -> None:
    """A full-page screenshot `artifacts/screenshots/e2e-<name>.png` to look at."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.screenshot(path=SCREENSHOTS / f"e2e-{name}.png", full_page=True)


def console_errors(page: Page) -> list[str]:
    """Collect the page's console errors and uncaught exceptions into a list the test checks."""
    found: list[str] = []
    page.on(
        "console",
        lambda msg: (
            found.append(f"{msg.text} [{msg.location.get('url')}]") if msg.type == "error" else None
        ),
    )
    page.on("pageerror", lambda exc: found.append(str(exc)))
    return found
