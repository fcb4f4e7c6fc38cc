"""The charts' smoothing and the comparison's URL view (web/static/lib/smooth.js, chart-view.js)
under `node --test` (tests/web/js/smooth.test.mjs): pure functions, no browser."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "tests" / "web" / "js" / "smooth.test.mjs"


def test_smoothing_passes_node_test() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: smooth.js is checked only where Node exists")
    result = subprocess.run(
        [node, "--test", str(SPEC)], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    tests = SPEC.read_text().count('\ntest("')
    assert tests >= 8 and f"# pass {tests}" in result.stdout and "# fail 0" in result.stdout
