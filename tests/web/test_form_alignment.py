"""Paired form fields (.field-pair) keep their inputs on one line when a label wraps or only
one of the pair has help or errors (new-dataset and new-model forms, desktop and tablet)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page

from tests.web.fake_site import sign_in

pytestmark = pytest.mark.browser

# For each visible pair: the fields that start on the same line, and their controls' tops.
MISALIGNED = """() => {
  const out = [];
  for (const pair of document.querySelectorAll(".field-pair")) {
    if (!pair.offsetParent) continue;
    const rows = new Map();
    for (const field of pair.querySelectorAll(":scope > .field")) {
      const control = field.querySelector("input:not([type=hidden]), select");
      if (!control) continue;
      const top = Math.round(field.getBoundingClientRect().top);
      if (!rows.has(top)) rows.set(top, []);
      rows.get(top).push([control.id, control.getBoundingClientRect().top]);
    }
    for (const row of rows.values()) {
      const tops = row.map(([, t]) => t);
      if (Math.max(...tops) - Math.min(...tops) > 1) out.push(row.map(([id, t]) => `${id}@${Math.round(t)}`).join(" "));
    }
  }
  return out;
}"""


@pytest.mark.parametrize("width", [1280, 760])
@pytest.mark.parametrize(
    "path",
    [
        "/datasets/images/classification/new",
        "/models/images/classification/new",
        "/test/dataset-errors",
        "/test/model-errors",
    ],
)
def test_paired_inputs_line_up(page: Page, site: str, path: str, width: int) -> None:
    sign_in(page, site, "alice")
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(site + path)
    page.locator("details.more-options").evaluate_all("ds => ds.forEach((d) => { d.open = true; })")
    # A label that wraps onto three lines, beside one that does not.
    page.locator("label[for=folder_pct_val], label[for=train_epochs]").evaluate_all(
        "ls => ls.forEach((l) => { l.textContent = 'A much longer label that wraps onto several lines here'; })"
    )
    assert page.evaluate(MISALIGNED) == []
