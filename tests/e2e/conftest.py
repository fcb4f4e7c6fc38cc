"""The whole system started through the launcher (`digits run`), once per test session."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.conftest import free_port

# The first admin's password (DIGITS_ADMIN_PASSWORD) of the systems the tests start, and the one
# every account the tests open gets.
ADMIN_PASSWORD = "e2e-admin-password"
USER_PASSWORD = "e2e-user-password"


@dataclass(frozen=True)
class System:
    """A running DIGITS: its URL and the folder dataset paths may point into."""

    url: str
    data_dir: Path
    root: Path
    log: Path


def wait_until(predicate, timeout: float, every: float = 0.5, what: str = "condition"):
    """Poll `predicate` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture(scope="session")
def digits_system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """`python -m digits_cli run` with its own data dir, a free port and a data root.

    DIGITS_E2E_URL + DIGITS_E2E_ROOT (a data root of that system) point the tests at a system
    that is already running instead, to iterate on one test without waiting for a start.
    """
    if url := os.environ.get("DIGITS_E2E_URL"):
        root = Path(tempfile.mkdtemp(dir=os.environ["DIGITS_E2E_ROOT"]))
        yield System(url=url, data_dir=root, root=root, log=root / "launcher.log")
        return
    with start_system(tmp_path_factory.mktemp("digits")) as system:
        yield system


@contextlib.contextmanager
def start_system(
    base: Path, admin_password: str | None = ADMIN_PASSWORD, **settings: str
) -> Iterator[System]:
    """`python -m digits_cli run` in `base` (data dir and data root), with extra `DIGITS_*`
    settings; stopped with SIGTERM when the block ends. Without `admin_password` the first
    admin's password is generated and the launcher prints a one-time sign-in link."""
    root = base / "images"
    root.mkdir()
    port = free_port()
    env = dict(os.environ)
    env.update(
        DIGITS_PORT=str(port),
        DIGITS_GATEWAY_HOST="127.0.0.1",
        DIGITS_DATA_DIR=str(base / "data"),
        DIGITS_DATA_ROOTS=str(root),
        OMP_NUM_THREADS="2",
        **settings,
    )
    env.pop("DIGITS_NATS_URL", None)
    env.pop("DIGITS_ADMIN_PASSWORD", None)
    if admin_password:
        env["DIGITS_ADMIN_PASSWORD"] = admin_password
    log = base / "launcher.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "digits_cli", "run"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _ready(url, proc, log), timeout=180, what="the system to be ready")
        yield System(url=url, data_dir=base / "data", root=root, log=log)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> bool:
    if proc.poll() is not None:
        raise AssertionError(f"launcher exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _send_csrf(client: httpx.Client) -> None:
    """Send the CSRF cookie back as the header on state changes, as the web UI's scripts do."""

    def hook(request: httpx.Request) -> None:
        token = client.cookies.get("csrftoken")
        if token and request.method not in ("GET", "HEAD", "OPTIONS"):
            request.headers["x-csrftoken"] = token

    client.event_hooks["request"].append(hook)


def sign_in(client: httpx.Client, username: str, password: str) -> None:
    """Sign in through DIGITS's own route (`username` + `password`), then fetch a CSRF cookie."""
    r = client.post("/login", data={"username": username, "password": password})
    assert r.status_code == 302, f"sign-in as {username}: {r.status_code} {r.text[:300]}"
    client.get("/")
    if not any(h.__name__ == "hook" for h in client.event_hooks["request"]):
        _send_csrf(client)


@contextlib.contextmanager
def signed_in(
    system: System, username: str, role: str = "user", timeout: float = 60
) -> Iterator[httpx.Client]:
    """A client signed in as `username`, an account the admin opens first if it is missing."""
    if username != "admin":
        with httpx.Client(base_url=system.url, timeout=timeout) as admin:
            sign_in(admin, "admin", ADMIN_PASSWORD)
            r = admin.post(
                "/api/v1/users",
                json={"username": username, "password": USER_PASSWORD, "role": role},
            )
            assert r.status_code in (201, 409), r.text
    with httpx.Client(base_url=system.url, timeout=timeout) as client:
        sign_in(client, username, ADMIN_PASSWORD if username == "admin" else USER_PASSWORD)
        yield client


def write_intensity_classes(folder: Path, per_class: int = 30, size: int = 28) -> dict[str, float]:
    """Three clearly separable classes of noisy gray images: dark, mid, bright."""
    levels = {"dark": 40.0, "mid": 128.0, "bright": 215.0}
    rng = np.random.default_rng(7)
    for label, level in levels.items():
        (folder / label).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = np.clip(rng.normal(level, 18, (size + 4, size + 4)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels, "L").save(folder / label / f"{label}_{i:03d}.png")
    return levels
