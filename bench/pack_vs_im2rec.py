"""Dataset packing and blob transfer: the datasets service's packer against MXNet's im2rec.py.

Three comparisons, each printed as a ratio against its anchor:

1. `photos`: camera-sized JPEGs (1-12 MP, generated once and cached) -> 256x256. Candidate: the
   service's own `Packer` (worker processes, JPEG reduced-scale decode, streaming writes, exact
   mean). Anchor: `<site-packages>/mxnet/tools/im2rec.py --resize 256 --center-crop` with the
   same number of worker processes (`--num-thread`). Both write JPEG records; both are timed as
   whole processes (interpreter start and imports included), alternately, `--rounds` times.
2. `small`: small JPEGs (100-400 px) -> 32x32, the same way.
3. `blobs`: a 100 MB file through the Object Store (`put_file`: 960 KB chunks, 8 awaiting their
   acks at once; then `fetch` into an empty cache: a pull consumer fed 16 chunks ahead) against
   nats-py's own `get(writeinto=...)`, median of `--blob-rounds`, each run printed.

Peak RSS is the largest single process of each run (the parent or one worker).

    .venv/bin/python bench/pack_vs_im2rec.py [--photos 200] [--small 5000] [--workers N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from PIL import Image

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "digits-bench"
IM2REC = Path(np.__file__).parent.parent / "mxnet" / "tools" / "im2rec.py"
MEGAPIXELS = (1, 2, 3, 5, 8, 12)


def _photo(args: tuple[Path, int, int, int]) -> None:
    """One photo-like JPEG: smooth colour fields, shapes and sensor noise, quality 90."""
    path, width, height, seed = args
    rng = np.random.default_rng(seed)
    small = Image.fromarray(rng.integers(0, 255, (12, 16, 3), dtype=np.uint8))
    image = small.resize((width, height), Image.Resampling.BICUBIC)
    pixels = np.asarray(image, dtype=np.int16)
    pixels += rng.integers(-12, 12, (height, 1, 1), dtype=np.int16)  # banding like real light
    noise = rng.integers(-6, 7, (64, 64, 3), dtype=np.int16)
    pixels += np.tile(noise, (height // 64 + 1, width // 64 + 1, 1))[:height, :width]
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path, "JPEG", quality=90)


def generate(kind: str, count: int) -> Path:
    """A cached folder of two class folders holding `count` JPEGs (generated once)."""
    root = CACHE / f"{kind}-{count}-v1"
    if (root / ".done").exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    rng = np.random.default_rng(7)
    jobs = []
    for i in range(count):
        folder = root / ("a" if i % 2 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        if kind == "photos":
            mp = MEGAPIXELS[i % len(MEGAPIXELS)] * 1_000_000
            width = int((mp * 4 / 3) ** 0.5)
            size = (width, int(width * 3 / 4))
        else:
            size = tuple(int(x) for x in rng.integers(100, 401, 2))
        jobs.append((folder / f"img{i:05}.jpg", size[0], size[1], i))
    print(f"generating {count} {kind} into {root} (once) ...", flush=True)
    with Pool(os.cpu_count() or 1) as pool:
        pool.map(_photo, jobs, chunksize=4)
    (root / ".done").touch()
    return root


def _timed(cmd: list[str]) -> tuple[float, float, float]:
    """Run a command; (wall s, CPU s of all its processes, peak RSS MB of its largest one)."""
    wrapper = (
        "import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]);"
        "u = resource.getrusage(resource.RUSAGE_CHILDREN);"
        "print(u.ru_utime + u.ru_stime, u.ru_maxrss); sys.exit(r.returncode)"
    )
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", wrapper, *cmd], capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - start
    if out.returncode:
        raise SystemExit(f"{cmd[:3]} failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    cpu, rss = out.stdout.strip().splitlines()[-1].split()
    return wall, float(cpu), int(rss) / 1024


def run_im2rec(src: Path, work: Path, size: int, workers: int) -> tuple[float, float, float]:
    prefix = work / "im2rec"
    lst = [
        sys.executable,
        str(IM2REC),
        "--list",
        "--recursive",
        "--no-shuffle",
        str(prefix),
        str(src),
    ]
    subprocess.run(lst, check=True, capture_output=True)  # the list step is not timed
    pack = [
        sys.executable,
        str(IM2REC),
        "--resize",
        str(size),
        "--center-crop",
        "--quality",
        "90",
        "--num-thread",
        str(workers),
        str(prefix),
        str(src),
    ]
    return _timed(pack)


def run_ours(src: Path, work: Path, size: int, workers: int) -> tuple[float, float, float]:
    cmd = [sys.executable, __file__, "_ours", str(src), str(work / "ours"), str(size), str(workers)]
    return _timed(cmd)


def ours_child(src: str, out: str, size: int, workers: int) -> None:
    """The candidate, as the service runs a build: its BuildPool, then scan, plan and Packer.

    The service starts its pool when it starts; here the pool starts first thing too, so the
    workers' start-up overlaps the scan, as it overlaps connecting to NATS in the service.
    """
    from digits_datasets.pool import BuildPool

    pool = BuildPool(workers)
    pool.start()

    from digits_datasets.folders import scan_folder
    from digits_datasets.packing import EncodeSpec
    from digits_datasets.settings import Settings
    from digits_datasets.shards import Packer
    from digits_datasets.splits import plan_splits

    classes, _ = scan_folder(src, [src])
    plan = plan_splits(classes, 0, 0)
    spec = EncodeSpec(width=size, height=size, channels=3, resize_mode="squash", encoding="jpg")

    async def progress(*_: object) -> None:
        return None

    settings = Settings()  # the service's own defaults (chunk size)
    packer = Packer(pool.executor(), spec, settings.chunk_size, inflight=2 * pool.workers)
    result = asyncio.run(packer.pack(plan, Path(out), lambda: False, progress))
    pool.shutdown()
    print(json.dumps({"entries": result.splits[0].entries}), file=sys.stderr)


def compare(name: str, src: Path, count: int, size: int, workers: int, rounds: int) -> None:
    """Alternate im2rec and ours; img/s by wall clock and per CPU second (load-independent)."""
    print(f"\n## {name}: {count} JPEGs -> {size}x{size}, {workers} worker process(es)")
    print(
        f"{'round':>5} {'im2rec img/s':>13} {'ours img/s':>11} {'ratio':>6} "
        f"{'im2rec img/cpu-s':>17} {'ours img/cpu-s':>15} {'ratio':>6} "
        f"{'im2rec RSS MB':>14} {'ours RSS MB':>12}"
    )
    walls, cpus = [], []
    for r in range(rounds):
        with tempfile.TemporaryDirectory() as tmp:
            a_wall, a_cpu, a_rss = run_im2rec(src, Path(tmp), size, workers)
            o_wall, o_cpu, o_rss = run_ours(src, Path(tmp), size, workers)
        a, o, ac, oc = count / a_wall, count / o_wall, count / a_cpu, count / o_cpu
        walls.append(o / a)
        cpus.append(oc / ac)
        print(
            f"{r + 1:>5} {a:>13.1f} {o:>11.1f} {o / a:>5.2f}x {ac:>17.1f} {oc:>15.1f} "
            f"{oc / ac:>5.2f}x {a_rss:>14.0f} {o_rss:>12.0f}"
        )
    print(
        f"median ratio ours/im2rec: {statistics.median(walls):.2f}x by wall clock, "
        f"{statistics.median(cpus):.2f}x per CPU second"
    )


async def blobs(megabytes: int, rounds: int) -> None:
    import nats
    from nats.js.api import ObjectStoreConfig

    from digits_proto.runtime import fetch, put_file

    print(f"\n## blobs: {megabytes} MB through the Object Store, median of {rounds}")
    with tempfile.TemporaryDirectory() as tmp:
        server = Path(sys.executable).parent / "nats-server"
        proc = subprocess.Popen(
            [str(server), "-js", "-a", "127.0.0.1", "-p", "14299", "-sd", f"{tmp}/store"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            await asyncio.sleep(0.5)
            nc = await nats.connect("nats://127.0.0.1:14299")
            js = nc.jetstream()
            await js.create_object_store("bench", config=ObjectStoreConfig(bucket="bench"))
            src = Path(tmp) / "blob.bin"
            src.write_bytes(os.urandom(megabytes * 1024 * 1024))
            puts, gets, anchor = [], [], []
            for i in range(rounds):
                t = time.perf_counter()
                ref = await put_file(js, "bench", f"shard{i}", src)
                puts.append(megabytes / (time.perf_counter() - t))
                t = time.perf_counter()
                path = await fetch(js, ref, Path(tmp) / f"cache{i}")
                gets.append(megabytes / (time.perf_counter() - t))
                assert path.stat().st_size == src.stat().st_size
                path.unlink()
                store = await js.object_store("bench")
                t = time.perf_counter()
                with open(Path(tmp) / "anchor.bin", "wb") as f:
                    await store.get(f"shard{i}", writeinto=f)
                anchor.append(megabytes / (time.perf_counter() - t))
            await nc.close()
        finally:
            proc.terminate()
            proc.wait()
    spread = "  (runs: {})".format
    print(f"put_file:                 {statistics.median(puts):7.0f} MB/s", spread(_ints(puts)))
    print(f"fetch (pull consumer):    {statistics.median(gets):7.0f} MB/s", spread(_ints(gets)))
    print(f"nats-py get(writeinto):   {statistics.median(anchor):7.0f} MB/s  (anchor)")
    print(f"fetch / get ratio:        {statistics.median(gets) / statistics.median(anchor):.2f}x")


def _ints(values: list[float]) -> str:
    return " ".join(f"{v:.0f}" for v in values)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_ours":
        ours_child(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=200)
    parser.add_argument("--small", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--blob-mb", type=int, default=100)
    parser.add_argument("--blob-rounds", type=int, default=5)
    parser.add_argument("--only", choices=("photos", "small", "blobs"), action="append")
    args = parser.parse_args()
    only = set(args.only or ("photos", "small", "blobs"))
    print(f"cpus {os.cpu_count()}, load {os.getloadavg()[0]:.1f}, python {sys.version.split()[0]}")
    if "photos" in only:
        compare(
            "photos", generate("photos", args.photos), args.photos, 256, args.workers, args.rounds
        )
    if "small" in only:
        compare("small", generate("small", args.small), args.small, 32, args.workers, args.rounds)
    if "blobs" in only:
        asyncio.run(blobs(args.blob_mb, args.blob_rounds))
    print(
        f"\nbench peak RSS (this process): "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
    )


if __name__ == "__main__":
    main()
