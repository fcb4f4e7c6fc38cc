"""`python -m digits_inference` as the launcher runs it: ready on /health, stops on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.conftest import free_port


def health(port: int) -> int | None:
    """The HTTP status of /health, or None while nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


def test_module_starts_reports_ready_and_exits_cleanly_on_sigterm(
    nats_url: str, tmp_path: Path
) -> None:
    """With the launcher's env the process answers 200 on /health, then SIGTERM ends it with 0."""
    port = free_port()
    env = {
        **os.environ,
        "DIGITS_NATS_URL": nats_url,
        "DIGITS_DATA_DIR": str(tmp_path),
        "DIGITS_INFERENCE_PORT": str(port),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "digits_inference"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while health(port) != 200:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "no 200 on /health"
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
