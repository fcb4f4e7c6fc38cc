"""A lab's volume: hundreds of tiny training jobs queued at once on CPU slots.

Starts the whole system through the launcher (`python -m digits_cli run`, a temporary data
directory), builds one tiny dataset, submits `--jobs` one-epoch LeNet jobs at once, then, while
they wait and run:

- samples each control process's CPU (utime + stime from /proc/<pid>/stat; training children
  are not control processes and are left out);
- polls small reads (`/api/v1/devices`, `/api/v1/queue`, `/index.json`) and prints p50/p99/max;
- when the jobs are done (or `--minutes` pass), reads every job's status history and training
  log: lease (Running) → "data loaded" → first iteration, and jobs per minute.

Prints figures; never asserts. `uptime` is printed first and last: read the figures with it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
from PIL import Image
from system import PASSWORD, free_port, launcher_env

CONTROL = (
    "digits_gateway",
    "digits_gpu_broker",
    "digits_trainer",
    "digits_datasets",
    "digits_inference",
    "nats-server",
)
READS = ("/api/v1/devices", "/api/v1/queue", "/index.json")
TICKS = os.sysconf("SC_CLK_TCK")
STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)")


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


@contextlib.contextmanager
def system(base: Path, slots: int) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    """The launcher in `base`, signed-in admin password set; SIGTERM at the end."""
    root = base / "images"
    root.mkdir()
    port = free_port()
    env = launcher_env(base, port, DIGITS_CPU_SLOTS=str(slots), OMP_NUM_THREADS="2")
    with open(base / "launcher.log", "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "digits_cli", "run"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SystemExit((base / "launcher.log").read_text()[-3000:])
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            time.sleep(0.5)
        yield url, proc, root
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()


def client(url: str) -> httpx.Client:
    """An admin session (cookie + CSRF header on state changes, as the web UI sends)."""
    c = httpx.Client(base_url=url, timeout=120)
    r = c.post("/login", data={"username": "admin", "password": PASSWORD})
    assert r.status_code == 302, r.text
    c.get("/")

    def csrf(request: httpx.Request) -> None:
        if (token := c.cookies.get("csrftoken")) and request.method != "GET":
            request.headers["x-csrftoken"] = token

    c.event_hooks["request"].append(csrf)
    return c


def post(c: httpx.Client, url: str, data: dict[str, str]) -> httpx.Response:
    """POST with an Idempotency-Key, retried on 503 as the answer says (a retry returns the
    first answer, never a second job)."""
    key = uuid.uuid4().hex
    for _ in range(20):
        r = c.post(url, data=data, headers={"Idempotency-Key": key})
        if r.status_code != 503:
            return r
        time.sleep(float(r.headers.get("retry-after", "1")))
    return r


def tiny_dataset(c: httpx.Client, root: Path) -> str:
    """Three classes of 12 noisy 28×28 gray images, built; its id."""
    rng = np.random.default_rng(7)
    for label, level in {"dark": 40, "mid": 128, "bright": 215}.items():
        (root / label).mkdir(parents=True)
        for i in range(12):
            pixels = np.clip(rng.normal(level, 18, (28, 28)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels, "L").save(root / label / f"{i}.png")
    r = post(
        c,
        "/datasets/images/classification.json",
        data=dict(
            folder_train=str(root),
            folder_pct_val="0",
            resize_width="28",
            resize_height="28",
            resize_channels="1",
            dataset_name="tiny",
        ),
    )
    assert r.is_success, r.text
    dataset_id = r.json()["id"]
    while c.get(f"/datasets/{dataset_id}/status").json()["status"] != "Done":
        time.sleep(0.5)
    return dataset_id


def submit(c: httpx.Client, dataset_id: str, n: int) -> list[str]:
    """`n` one-epoch LeNet jobs, from 8 client threads at once."""

    def one(i: int) -> str:
        r = post(
            c,
            "/models/images/classification.json",
            data=dict(
                dataset=dataset_id,
                standard_networks="lenet",
                train_epochs="1",
                batch_size="16",
                model_name=f"q{i:04d}",
            ),
        )
        return r.json()["id"] if r.is_success else f"! {r.status_code}"

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(n)))


def control_pids(launcher: int) -> dict[int, str]:
    """The launcher's children that are control services (by command line)."""
    out = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) != launcher:
                continue
            cmd = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            name = next((n for n in CONTROL if n in cmd), None)
            if name:
                out[int(stat.parent.name)] = name.removeprefix("digits_")
    return out


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


class Sampler(threading.Thread):
    """CPU share of each control process over windows of `every` seconds while `waiting()`,
    filed under the phase `phase()` names (quiet: nobody reads; read: the pollers run)."""

    def __init__(self, pids: dict[int, str], waiting, phase, every: float = 5.0):
        super().__init__(daemon=True)
        self.pids, self.waiting, self.phase, self.every = pids, waiting, phase, every
        self.shares: dict[str, dict[str, list[float]]] = {}
        self.done = threading.Event()

    def run(self) -> None:
        last = {pid: cpu_seconds(pid) for pid in self.pids}
        at = time.monotonic()
        while not self.done.wait(self.every):
            now = time.monotonic()
            counting = self.waiting() > 0
            shares = self.shares.setdefault(self.phase(), {n: [] for n in self.pids.values()})
            for pid, name in self.pids.items():
                with contextlib.suppress(OSError):
                    used = cpu_seconds(pid)
                    if counting:
                        shares[name].append((used - last[pid]) / (now - at))
                    last[pid] = used
            at = now


class Poller(threading.Thread):
    """Each small read once a second (own client each), latencies in seconds."""

    def __init__(self, c: httpx.Client, path: str):
        super().__init__(daemon=True)
        self.c, self.path = c, path
        self.times: list[float] = []
        self.errors = 0
        self.bytes = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            start = time.monotonic()
            try:
                r = self.c.get(self.path, headers={"Accept": "application/json"})
                self.bytes = len(r.content)
                self.errors += r.status_code != 200
            except httpx.HTTPError:
                self.errors += 1
            took = time.monotonic() - start
            self.times.append(took)
            self.done.wait(max(0.0, 1.0 - took))


def every_model(c: httpx.Client) -> list[dict]:
    """Every model, page by page (`next` until null)."""
    jobs: list[dict] = []
    url: str | None = "/api/v1/models?limit=1000"
    while url is not None:
        page = c.get(url).json()
        jobs += page.get("jobs", [])
        url = page.get("next")
    return jobs


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def log_times(path: Path) -> tuple[float | None, float | None]:
    """The job log's "data loaded" and first "training" line times (whole seconds)."""
    loaded = first = None
    with contextlib.suppress(OSError):
        for line in path.read_text(errors="replace").splitlines():
            m = STAMP.match(line)
            if not m:
                continue
            at = datetime.strptime(m[1], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp()
            if loaded is None and "data loaded" in line:
                loaded = at
            elif loaded is not None and "training" in line and "per_epoch" in line:
                first = at
                break
    return loaded, first


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=300)
    p.add_argument("--slots", type=int, default=2)
    p.add_argument("--minutes", type=float, default=10.0, help="stop waiting after this long")
    p.add_argument("--quiet", type=float, default=40.0, help="seconds with no reader first")
    args = p.parse_args()
    print(f"before: {uptime()}")
    with (
        tempfile.TemporaryDirectory(prefix="digits-queue-") as tmp,
        system(Path(tmp), args.slots) as (url, launcher, root),
    ):
        admin = client(url)
        dataset_id = tiny_dataset(admin, root)
        pids = control_pids(launcher.pid)
        print(f"control processes: {sorted(pids.values())}")
        started = time.monotonic()
        ids = submit(admin, dataset_id, args.jobs)
        failed = [i for i in ids if i.startswith("!")]
        ids = [i for i in ids if not i.startswith("!")]
        print(
            f"submitted {len(ids)} jobs in {time.monotonic() - started:.1f} s"
            f" ({len(failed)} refused: {sorted(set(failed))})"
        )
        status: dict[str, str] = {}

        def waiting() -> int:
            return sum(s in ("Initialized", "Waiting") for s in status.values()) or (
                0 if status else len(ids)
            )

        phase = ["quiet"]
        sampler = Sampler(pids, waiting, lambda: phase[0])
        sampler.start()
        # First nobody reads: what the queue alone costs (the jobs far outnumber what trains).
        time.sleep(args.quiet)
        phase[0] = "read"
        pollers = [Poller(client(url), path) for path in READS]
        for t in pollers:
            t.start()
        deadline = started + args.minutes * 60
        while time.monotonic() < deadline:
            jobs = every_model(admin)
            status = {j["id"]: j["status"] for j in jobs if j["id"] in set(ids)}
            if all(s in ("Done", "Error", "Aborted") for s in status.values()):
                break
            time.sleep(5)
        ended = time.monotonic()
        for t in (sampler, *pollers):
            t.done.set()
        report(admin, Path(tmp) / "data", ids, status, sampler, pollers, ended - started)
    print(f"after: {uptime()}")


def report(admin, data: Path, ids, status, sampler: Sampler, pollers, wall: float) -> None:
    print("\ncontrol CPU while jobs waited (share of one core, mean over 5 s windows):")
    for phase, shares_of in sampler.shares.items():
        label = "nobody reading" if phase == "quiet" else "the three pollers and a list each 5 s"
        print(f"  {phase} ({label}):")
        total = 0.0
        for name, shares in sorted(shares_of.items()):
            mean = statistics.fmean(shares) if shares else 0.0
            total += mean
            top = max(shares, default=0) * 100
            print(f"    {name:12s} {mean * 100:5.1f} %  (max window {top:.0f} %)")
        print(f"    {'together':12s} {total * 100:5.1f} %  (target < 10 %)")
    print("\nsmall reads, polled each second:")
    for poller in pollers:
        t = poller.times
        print(
            f"  {poller.path:18s} n={len(t):4d} p50 {pct(t, 0.5) * 1000:6.0f} ms  "
            f"p99 {pct(t, 0.99) * 1000:6.0f} ms  max {max(t, default=0) * 1000:6.0f} ms  "
            f"errors {poller.errors}  last {poller.bytes / 1024:.0f} KB"
        )
    done = [i for i in ids if status.get(i) == "Done"]
    to_loaded, to_first, runs = [], [], []
    for job_id in done:
        history = dict(
            (s, at) for s, at in admin.get(f"/models/{job_id}.json").json()["status_history"]
        )
        loaded, first = log_times(data / "trainer" / "jobs" / job_id / "train.log")
        if "Running" in history and loaded and first:
            to_loaded.append(loaded - history["Running"])
            to_first.append(first - loaded)
        if "Running" in history and "Done" in history:
            runs.append(history["Done"] - history["Running"])
    print(
        f"\njobs: {len(done)} Done of {len(ids)} in {wall:.0f} s "
        f"({len(done) / wall * 60:.1f} jobs/minute); "
        f"others: {sorted({s for s in status.values() if s != 'Done'})}"
    )
    for label, values in (
        ("Running → data loaded", to_loaded),
        ("data loaded → first iteration", to_first),
        ("Running → Done", runs),
    ):
        if values:
            print(
                f"  {label:30s} p50 {pct(values, 0.5):5.1f} s  p99 {pct(values, 0.99):5.1f} s  "
                f"max {max(values):5.1f} s  (log times: whole seconds)"
            )


if __name__ == "__main__":
    main()
