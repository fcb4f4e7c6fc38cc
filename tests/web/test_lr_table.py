"""One table of learning rates (tests/fixtures/lr_table.json) checked in Python and in node."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from digits_gateway.controllers.lr_preview import schedule
from digits_proto.models import TrainSpec
from digits_trainer.lr import lr_at

ROOT = Path(__file__).resolve().parents[2]
TABLE = json.loads((ROOT / "tests" / "fixtures" / "lr_table.json").read_text())
CASES = [pytest.param(c, id=f"{c['params']}@{c['progress']}") for c in TABLE["cases"]]


def _approx(expected: float) -> Any:
    return pytest.approx(expected, rel=TABLE["rel_tol"], abs=TABLE["abs_tol"])


@pytest.mark.parametrize("case", CASES)
def test_trainer_lr_at_matches_the_shared_table(case: dict[str, Any]) -> None:
    """The trainer's `lr_at` gives the table's learning rate for each policy and percent."""
    spec = TrainSpec(**case["params"])
    assert lr_at(case["progress"], spec) == _approx(case["expected"])


@pytest.mark.parametrize("case", [c for c in CASES if float(c.values[0]["progress"]).is_integer()])
def test_visualize_lr_columns_match_the_shared_table(case: dict[str, Any]) -> None:
    """The gateway's visualize-lr column holds the table's value at that whole percent."""
    values = {k: str(v) for k, v in case["params"].items()}
    [column] = schedule(values)
    assert column[0] == "Learning Rate 0"
    assert column[1 + int(case["progress"])] == _approx(case["expected"])


def test_lr_js_passes_node_test_on_the_shared_table() -> None:
    """web/static/lib/lr.js agrees with the same table under `node --test`."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: lr.js is checked only where Node exists")
    result = subprocess.run(
        [node, "--test", str(ROOT / "tests" / "web" / "js" / "lr.test.mjs")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert f"# pass {len(TABLE['cases']) + 3}" in result.stdout
