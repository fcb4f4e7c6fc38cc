"""The two standalone consumers in examples/ against the launched system while a model trains.

metrics_to_csv.py reads NATS with credentials from `digits consumer-creds`; webhook_on_job_end.py
follows the gateway's /api/v1/events with an API token and posts to a local http.server. Their
output is compared with what the gateway itself reports.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import System, signed_in, wait_until, write_intensity_classes
from tests.e2e.flows import build_dataset

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


class Hook:
    """A webhook target on loopback that keeps every JSON body posted to it."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def hook() -> Iterator[Hook]:
    """A running webhook target."""
    target = Hook()
    yield target
    target.server.shutdown()


def consumer_creds(system: System, name: str) -> dict[str, Any]:
    """`digits consumer-creds NAME --json` on the system's data dir, as an operator runs it."""
    env = dict(os.environ, DIGITS_DATA_DIR=str(system.data_dir))
    env.pop("DIGITS_NATS_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "digits_cli", "consumer-creds", name, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def example(
    script: str, *args: str, out: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """Run an example with this interpreter (which has nats-py, msgspec and httpx)."""
    with open(out, "w") as log:
        return subprocess.Popen(
            [sys.executable, str(EXAMPLES / script), *args],
            env={**os.environ, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )


def finished(proc: subprocess.Popen[str], log: Path, timeout: float) -> None:
    """Wait for an example to exit 0; its output in the failure otherwise."""
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0, log.read_text()[-3000:]


@pytest.mark.timeout(900)
def test_the_examples_write_each_metric_point_and_post_each_job_end(
    digits_system: System, hook: Hook, tmp_path: Path
) -> None:
    """CSV rows = the gateway's metric points; one webhook post per ended job, with its status."""
    if os.environ.get("DIGITS_E2E_URL"):
        pytest.skip("consumer-creds works on the data dir of a system this test started")
    creds = consumer_creds(digits_system, "examples")
    assert creds["applied"] == "reloaded"
    with signed_in(digits_system, "admin") as client:
        token = client.post("/api/v1/tokens", json={"name": "webhook-example"}).json()["token"]
        hook_log = tmp_path / "webhook.log"
        webhook = example(
            "webhook_on_job_end.py",
            *("--url", digits_system.url, "--webhook", hook.url, "--exit-after", "2"),
            out=hook_log,
            env={"DIGITS_TOKEN": token},  # a token may start with "-": never an argument
        )
        wait_until(
            lambda: "following the event feed" in hook_log.read_text() or webhook.poll(),
            timeout=60,
            what="the webhook example to follow the feed",
        )
        assert webhook.poll() is None, hook_log.read_text()
        folder = digits_system.root / "examples-gray"
        write_intensity_classes(folder, per_class=10)
        dataset_id = build_dataset(
            client,
            folder_train=str(folder),
            folder_pct_val="25",
            resize_width="28",
            resize_height="28",
            resize_channels="1",
            dataset_name="examples-gray",
        )
        r = client.post(
            "/models/images/classification.json",
            data={
                "dataset": dataset_id,
                "standard_networks": "lenet",
                "train_epochs": "2",
                "val_interval": "1",
                "random_seed": "3",
                "model_name": "examples-lenet",
            },
        )
        assert r.is_success, r.text
        model_id = r.json()["id"]
        csv_file, csv_log = tmp_path / "metrics.csv", tmp_path / "metrics.log"
        metrics = example(
            "metrics_to_csv.py",
            *("--server", str(creds["url"]), "--creds", str(creds["file"])),
            *("--out", str(csv_file), "--job", model_id, "--until-done"),
            out=csv_log,
        )
        train_status = wait_until(
            lambda: (
                (s := client.get(f"/models/{model_id}/status").json()["status"])
                in ("Done", "Error", "Aborted")
                and s
            ),
            timeout=600,
            what="the model to end",
        )
        assert train_status == "Done"
        finished(metrics, csv_log, timeout=60)
        finished(webhook, hook_log, timeout=60)
        points = client.get(f"/api/v1/models/{model_id}/metrics").json()["points"]

    with open(csv_file, newline="") as f:
        rows = list(csv.DictReader(f))
    expected = sorted(
        (round(p["epoch"], 6), f"{p['phase']}.{name}", round(value, 6))
        for p in points
        for name, value in p["values"].items()
        if value is not None
    )
    got = sorted(
        (round(float(r["epoch"]), 6), r["name"], round(float(r["value"]), 6)) for r in rows
    )
    assert got == expected
    assert {r["model_id"] for r in rows} == {model_id}
    assert {"train.loss", "val.accuracy"} <= {r["name"] for r in rows}
    assert all(r["time"] for r in rows)

    assert [(b["job_id"], b["kind"], b["status"]) for b in hook.bodies] == [
        (dataset_id, "dataset", "Done"),
        (model_id, "model", "Done"),
    ]
    assert hook.bodies[1]["event"] == "models.TrainingCompleted"
    # The gateway's feed and the consumer read under their own NATS users: nothing was refused.
    nats_log = (digits_system.data_dir / "logs" / "nats-server.log").read_text()
    refused = [ln for ln in nats_log.splitlines() if "Violation" in ln]
    assert not [ln for ln in refused if "consumer-examples" in ln or "digits-gateway" in ln]


def test_the_examples_import_nothing_from_this_project() -> None:
    """Standalone: only the standard library, nats-py, msgspec and httpx."""
    allowed = {"nats", "msgspec", "httpx"}
    for script in EXAMPLES.glob("*.py"):
        imported = {
            line.split()[1].split(".")[0]
            for line in script.read_text().splitlines()
            if line.startswith(("import ", "from "))
        }
        third_party = imported - set(sys.stdlib_module_names) - {"__future__"}
        assert third_party <= allowed, (script.name, third_party - allowed)
