"""Resume overhead: a training child killed (SIGKILL) and resumed against an uninterrupted one,
both the trainer's real child (`python -m digits_trainer.child`).

The data and the child's config and environment are those of `train_throughput.py` (LeNet on
real MNIST digits, PNG RecordIO), with a snapshot every `--interval` epochs, resume points as
the trainer asks for them (`Settings.resume_every`, adaptive to <= 2% of training time) and the
split's content key (`SplitFiles.key`, the blobs' digests in the trainer), so the decoded
dataset is cached next to the .rec, and each child is the trainer's spare (`spares.Spares`:
started ahead with MXNet imported, handed its job on stdin; `--no-spare`: a fresh interpreter). The uninterrupted run gives the wall time and the snapshot
interval in seconds; each interrupted run is killed `--kill-at` of an interval after a
snapshot, then a fresh child resumes from the newer of the last snapshot and the last resume
point, as `job.Attempt` does (this script stands in for the parent: it keeps the newest point
file and deletes older ones, as the parent does once it has uploaded one). Every job's first
child decodes the dataset (the cache is deleted before it); the resumed child finds the cache its
predecessor wrote, as a replacement attempt on the same node does. The overhead (interrupted
wall, both children, minus uninterrupted wall) must stay within one snapshot interval.

    .venv/bin/python bench/resume_overhead.py [--images 30000] [--epochs 3] [--interval 1]
        [--kill-at 0.5 0.9] [--rounds 1] [--resume-every 2]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import msgspec

from digits_trainer import reports
from digits_trainer.config import ResumeFiles, read_config, write_config
from digits_trainer.data import decoded_path
from digits_trainer.settings import Settings
from digits_trainer.spares import Spares

sys.path.insert(0, str(Path(__file__).parent))
from train_throughput import Setup, child_config, lease, load_mnist, pack


class Attempt(msgspec.Struct):
    """One child's run: its wall time, snapshots and resume points (time, report), last train
    loss."""

    wall: float
    snapshots: list[tuple[float, reports.SnapshotReport]]
    points: list[tuple[float, reports.ResumePointReport]]
    loss: float
    killed: bool


async def attempt(
    config: Path,
    threads: int,
    spares: Spares,
    kill_after: float | None = None,
    after_snapshot: int = 0,
) -> Attempt:
    """Run one child as `job.Attempt` starts it (the spare, if any, is ready by now, as it is
    in a trainer that started it with its previous job); with `kill_after`, SIGKILL it that
    many seconds after its `after_snapshot`-th snapshot (1-based)."""
    if spares.enabled and spares.spare is None:
        await spares.refill(lease(threads))
    await spares.ready()
    spawn = time.monotonic()
    child = await spares.start(config, config.parent, lease(threads))
    assert child.stdout is not None
    snapshots: list[tuple[float, reports.SnapshotReport]] = []
    points: list[tuple[float, reports.ResumePointReport]] = []
    loss, killer = float("nan"), None
    async for line in child.stdout:
        match reports.decoder.decode(line):
            case reports.MetricsReport(phase="train", values=values):
                loss = values["loss"]
            case reports.SnapshotReport() as snapshot:
                snapshots.append((time.monotonic() - spawn, snapshot))
                if kill_after is not None and len(snapshots) == after_snapshot:
                    killer = asyncio.get_running_loop().call_later(
                        kill_after, os.kill, child.pid, signal.SIGKILL
                    )
            case reports.ResumePointReport() as point:
                if points:  # the parent keeps only the newest (in the Object Store)
                    Path(points[-1][1].path).unlink(missing_ok=True)
                points.append((time.monotonic() - spawn, point))
            case reports.ErrorReport(message=message):
                sys.exit(f"trainer child failed: {message}")
    code = await child.wait()
    if killer is not None:
        killer.cancel()
    if code not in (0, -signal.SIGKILL):
        sys.exit(f"trainer child exited {code}; see {config.parent / 'train.log'}")
    return Attempt(time.monotonic() - spawn, snapshots, points, loss, code == -signal.SIGKILL)


def resume_from(first: Attempt) -> tuple[float, str, ResumeFiles]:
    """Where `job.Attempt` continues a killed attempt: the newer of its last snapshot and its
    last resume point (time it was written, what it is, its files)."""
    snap_time, snapshot = first.snapshots[-1]
    if first.points and first.points[-1][1].epoch > snapshot.epoch:
        point_time, point = first.points[-1]
        return point_time, "point", ResumeFiles(state=point.path)
    return snap_time, "snapshot", ResumeFiles(params=snapshot.params, state=snapshot.state)


def resumed_config(first: Path, job: Path, resume: ResumeFiles) -> Path:
    """The second attempt's config: the first's, in its own job folder, resuming from `resume`."""
    config = msgspec.structs.replace(
        read_config(str(first)),
        snapshot_dir=str(job / "snapshots"),
        resume_points=str(job / "resume"),
        resume=resume,
    )
    write_config(config, str(job / "config.json"))
    return job / "config.json"


def new_job(work: Path, data: Path, args: argparse.Namespace, key: str) -> Path:
    """A job folder with the child's config as `job.Attempt` writes it: one snapshot every
    `--interval` epochs, resume points, the split's content key; no decoded cache yet."""
    job = Path(tempfile.mkdtemp(dir=work, prefix="job-"))
    setup = Setup(data, work, args.epochs, args.batch, args.threads)
    config = read_config(str(child_config(setup, job)))
    config = msgspec.structs.replace(
        config,
        spec=msgspec.structs.replace(config.spec, snapshot_interval=args.interval),
        train=msgspec.structs.replace(config.train, key=key),
        resume_points=str(job / "resume") if args.resume_every > 0 else "",
        resume_every=args.resume_every,
    )
    cache = decoded_path(config.train, config.encoding, (config.channels, 28, 28))
    assert cache is not None
    cache.unlink(missing_ok=True)  # each job's first child decodes, as on a fresh node
    write_config(config, str(job / "config.json"))
    return job / "config.json"


def content_key(data: Path) -> str:
    """The split's content key, as the trainer forms it from the blobs' digests."""
    rec, idx = (
        hashlib.sha256((data / f"train.{e}").read_bytes()).hexdigest() for e in ("rec", "idx")
    )
    return f"{rec}|{idx}"


async def main(args: argparse.Namespace) -> None:
    """Pack the data, run uninterrupted and interrupted jobs alternately, print the overheads."""
    with tempfile.TemporaryDirectory(prefix="bench-resume-") as tmp:
        work = Path(tmp)
        data = work / "data"
        data.mkdir()
        images, labels = load_mnist(args.images)
        pack(data, images, labels)
        key = content_key(data)
        print(
            f"LeNet, MNIST {args.images} digits, {args.epochs} epochs, batch {args.batch}, "
            f"snapshot every {args.interval:g} epochs, resume points every >= "
            f"{args.resume_every:g} s, OMP_NUM_THREADS={args.threads}"
        )
        print(
            f"{'round':<7}{'kill at':>8}{'plain s':>9}{'interval s':>11}{'killed+resumed s':>18}"
            f"{'from':>9}{'lost s':>8}{'restart s':>10}{'overhead s':>11}{'ok':>4}"
            f"{'loss plain/resumed':>20}"
        )
        ratios: list[float] = []
        spares = Spares(enabled=not args.no_spare)
        try:
            await rounds(args, work, data, key, spares, ratios)
        finally:
            await spares.close()
    if ratios:
        print(
            f"\noverhead / snapshot interval: {min(ratios):.2f}-{max(ratios):.2f} "
            "(within one interval when <= 1.00)"
        )


async def rounds(
    args: argparse.Namespace, work: Path, data: Path, key: str, spares: Spares, ratios: list
) -> None:
    """Each round: one uninterrupted job, then one killed and resumed job per `--kill-at`."""
    for round_ in range(1, args.rounds + 1):
        plain = await attempt(new_job(work, data, args, key), args.threads, spares)
        times = [t for t, _ in plain.snapshots]
        interval = statistics.median(b - a for a, b in itertools.pairwise(times))
        middle = len(times) // 2
        for fraction in args.kill_at:
            config = new_job(work, data, args, key)
            first = await attempt(config, args.threads, spares, fraction * interval, middle)
            if not first.killed:  # it ran faster than the plain run: the load changed
                print(f"{round_:<7}{fraction:>8.2f}  finished before its kill: skipped")
                continue
            kill_time = first.wall
            last_time, source, resume = resume_from(first)
            job = Path(tempfile.mkdtemp(dir=work, prefix="job-"))
            second = await attempt(resumed_config(config, job, resume), args.threads, spares)
            total = first.wall + second.wall
            overhead = total - plain.wall
            ratios.append(overhead / interval)
            print(
                f"{round_:<7}{fraction:>8.2f}{plain.wall:>9.2f}{interval:>11.2f}"
                f"{total:>18.2f}{source:>9}{kill_time - last_time:>8.2f}"
                f"{overhead - (kill_time - last_time):>10.2f}{overhead:>11.2f}"
                f"{'yes' if overhead <= interval else 'no':>4}"
                f"{plain.loss:>10.4f}/{second.loss:.4f}"
            )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=30_000, help="MNIST digits (default 30000)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per job (default 3)")
    parser.add_argument("--batch", type=int, default=64, help="batch size (default 64)")
    parser.add_argument(
        "--interval", type=float, default=1.0, help="snapshot interval in epochs (default 1)"
    )
    parser.add_argument(
        "--kill-at",
        type=float,
        nargs="+",
        default=[0.5, 0.9],
        help="when to kill, in snapshot intervals after the middle snapshot (default 0.5 0.9)",
    )
    parser.add_argument("--rounds", type=int, default=1, help="rounds (default 1)")
    parser.add_argument(
        "--no-spare", action="store_true", help="start each child as a fresh interpreter"
    )
    parser.add_argument(
        "--resume-every",
        type=float,
        default=Settings().resume_every,
        help="minimum seconds between resume points, 0 = none (default: the trainer's)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=int(os.environ.get("OMP_NUM_THREADS") or 2),
        help="OMP threads, as a lease grants them (default $OMP_NUM_THREADS or 2)",
    )
    args = parser.parse_args(argv)
    if not 64 <= args.images <= 50_000:
        parser.error("--images must be between 64 and 50000")
    if not all(0 < f < 1 for f in args.kill_at):
        parser.error("--kill-at fractions must lie between 0 and 1")
    if not 0 < args.interval <= args.epochs / 3:
        parser.error("--interval must leave at least three snapshots (at most --epochs / 3)")
    return args


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
