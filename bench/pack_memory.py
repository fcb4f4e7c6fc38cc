"""Peak memory of a dataset build: does it stay flat as the image count grows?

The datasets service runs as its own process (`python -m digits_datasets`, its persistent
worker pool included) against a private nats-server. For each count, a CreateDataset of a
cached folder of tiny JPEGs (10 class folders, generated once) goes through the gateway's
command subject; the build parses, packs, uploads and records DatasetBuilt as in production.
Then the peak RSS (VmHWM) of the service process and of each of its worker processes is read
from /proc, next to the RSS the service had before the build.

    .venv/bin/python bench/pack_memory.py [--counts 2000,10000] [--workers N]

`--counts 10000,100000` shows the 100,000-image case (about 5 minutes on 2 busy cores, plus
a one-off minute or two to generate the images).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from PIL import Image

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "digits-bench"
ROOT = Path(__file__).resolve().parent.parent
CLASSES = 10


def _tiny(args: tuple[Path, int]) -> None:
    """One small JPEG (40-64 px a side), noisy, its class colour."""
    path, seed = args
    rng = np.random.default_rng(seed)
    w, h = (int(x) for x in rng.integers(40, 65, 2))
    base = rng.integers(0, 255, 3)
    pixels = np.clip(base + rng.integers(-40, 40, (h, w, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(path, "JPEG", quality=90)


def generate(count: int) -> Path:
    """A cached folder of `count` tiny JPEGs in CLASSES class folders (generated once)."""
    root = CACHE / f"tiny-{count}-v1"
    if (root / ".done").exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    jobs = []
    for c in range(CLASSES):
        (root / f"class{c}").mkdir(parents=True)
    for i in range(count):
        jobs.append((root / f"class{i % CLASSES}" / f"img{i:06}.jpg", i))
    print(f"generating {count} tiny JPEGs into {root} (once) ...", flush=True)
    with Pool(os.cpu_count() or 1) as pool:
        pool.map(_tiny, jobs, chunksize=256)
    (root / ".done").touch()
    return root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_kb(pid: int, field: str) -> int:
    """A `VmHWM`/`VmRSS` line of /proc/<pid>/status, in kB (0 if the process is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid: int) -> list[int]:
    """Direct child processes of `pid` (the service's pool workers, its resource tracker)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found.extend(int(t) for t in text)
    return found


def wait_healthy(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("the datasets service exited during start-up")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("the datasets service never became healthy")


async def build(nats_url: str, folder: Path) -> tuple[float, str]:
    """Create the dataset and wait for its last event; (seconds, final event type)."""
    import nats

    from digits_proto import codec, subjects
    from digits_proto.base import Principal, Role
    from digits_proto.datasets import CreateDataset, DatasetSpec
    from digits_proto.runtime import EventStore, request

    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    spec = DatasetSpec(
        folder_train=str(folder), folder_pct_val=10, resize_width=32, resize_height=32
    )
    start = time.perf_counter()
    body, rejected = await request(
        nc,
        subjects.CMD_DATASETS_CREATE,
        CreateDataset(name="mem", spec=spec, principal=Principal(username="bench", role=Role.USER)),
        timeout=60,
    )
    if rejected is not None:
        raise SystemExit(f"refused: {rejected}")
    dataset_id = codec.command_reply.decode(body).id
    store = EventStore(js, subjects.STREAM_DATASETS, codec.dataset_events)
    while True:
        await asyncio.sleep(1.0)
        events, _ = await store.load(subjects.dataset_events(dataset_id))
        last = type(events[-1]).__name__
        if last in ("DatasetBuilt", "DatasetFailed", "DatasetAborted"):
            await nc.close()
            return time.perf_counter() - start, last


def measure(count: int, workers: int) -> dict[str, float | str]:
    """Build `count` images in a fresh service; its timings and peak RSS figures (MB)."""
    folder = generate(count)
    server = Path(sys.executable).parent / "nats-server"
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        nats_url = f"nats://127.0.0.1:{port}"
        nats_proc = subprocess.Popen(
            [str(server), "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", f"{tmp}/store"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        health = free_port()
        env = {
            **os.environ,
            "DIGITS_NATS_URL": nats_url,
            "DIGITS_DATA_DIR": f"{tmp}/data",
            "DIGITS_DATA_ROOTS": str(folder.parent),
            "DIGITS_DATASETS_PORT": str(health),
            "DIGITS_DATASETS_BUILD_WORKERS": str(workers),
            "DIGITS_DATASETS_LOG_LEVEL": "warning",
        }
        service = subprocess.Popen(
            [sys.executable, "-m", "digits_datasets"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_healthy(health, service)
            before = proc_kb(service.pid, "VmRSS") / 1024
            seconds, outcome = asyncio.run(build(nats_url, folder))
            pool = [p for p in children(service.pid) if proc_kb(p, "VmHWM")]
            worker_peaks = sorted((proc_kb(p, "VmHWM") / 1024 for p in pool), reverse=True)
            parent_peak = proc_kb(service.pid, "VmHWM") / 1024
        finally:
            service.terminate()
            service.wait(timeout=30)
            nats_proc.terminate()
            nats_proc.wait()
    return {
        "count": count,
        "outcome": outcome,
        "seconds": seconds,
        "before": before,
        "parent": parent_peak,
        "workers": sum(worker_peaks[:workers]),
        "worker_max": worker_peaks[0] if worker_peaks else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="2000,10000")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    print(f"cpus {os.cpu_count()}, load {os.getloadavg()[0]:.1f}, {args.workers} workers")
    print(
        f"{'images':>8} {'outcome':>13} {'build s':>8} {'img/s':>6} {'svc RSS before':>15} "
        f"{'svc peak':>9} {'worker peak':>12} {'svc+workers peak':>17}  (MB)"
    )
    for count in counts:
        r = measure(count, args.workers)
        print(
            f"{count:>8} {r['outcome']:>13} {r['seconds']:>8.1f} {count / r['seconds']:>6.0f} "
            f"{r['before']:>15.0f} {r['parent']:>9.0f} {r['worker_max']:>12.0f} "
            f"{r['parent'] + r['workers']:>17.0f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
