"""Resume overhead: a training child killed (SIGKILL) and resumed from its last snapshot against
an uninterrupted one, both the trainer's real child (`python -m digits_trainer.child`).

The data and the child's config and environment are those of `train_throughput.py` (LeNet on
real MNIST digits, PNG RecordIO), with a snapshot every `--interval` epochs. The uninterrupted
run gives the wall time and the snapshot interval in seconds; each interrupted run is killed
`--kill-at` of an interval after a snapshot, then a fresh child resumes from that snapshot's
files as `job.Attempt` does. The overhead (interrupted wall, both children, minus uninterrupted
wall) must stay within one snapshot interval.

    .venv/bin/python bench/resume_overhead.py [--images 30000] [--epochs 3] [--interval 1]
        [--kill-at 0.5 0.9] [--rounds 1]
"""

from __future__ import annotations

import argparse
import asyncio
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
from digits_trainer.process import child_environment, start_child

sys.path.insert(0, str(Path(__file__).parent))
from train_throughput import child_config, lease, load_mnist, pack


class Attempt(msgspec.Struct):
    """One child's run: its wall time, snapshots (time, report) and last train loss."""

    wall: float
    snapshots: list[tuple[float, reports.SnapshotReport]]
    loss: float
    killed: bool


async def attempt(
    config: Path, threads: int, kill_after: float | None = None, after_snapshot: int = 0
) -> Attempt:
    """Run one child; with `kill_after`, SIGKILL it that many seconds after its
    `after_snapshot`-th snapshot (1-based)."""
    env = child_environment(lease(threads))
    spawn = time.monotonic()
    child = await start_child(config, config.parent, env)
    assert child.stdout is not None
    snapshots: list[tuple[float, reports.SnapshotReport]] = []
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
            case reports.ErrorReport(message=message):
                sys.exit(f"trainer child failed: {message}")
    code = await child.wait()
    if killer is not None:
        killer.cancel()
    if code not in (0, -signal.SIGKILL):
        sys.exit(f"trainer child exited {code}; see {config.parent / 'train.log'}")
    return Attempt(time.monotonic() - spawn, snapshots, loss, code == -signal.SIGKILL)


def resumed_config(first: Path, job: Path, snapshot: reports.SnapshotReport) -> Path:
    """The second attempt's config: the first's, resuming from `snapshot`'s files."""
    config = msgspec.structs.replace(
        read_config(str(first)),
        snapshot_dir=str(job / "snapshots"),
        resume=ResumeFiles(params=snapshot.params, state=snapshot.state),
    )
    write_config(config, str(job / "config.json"))
    return job / "config.json"


def new_job(work: Path, data: Path, args: argparse.Namespace) -> Path:
    """A job folder with the child's config (one snapshot every `--interval` epochs)."""
    job = Path(tempfile.mkdtemp(dir=work, prefix="job-"))
    config = child_config(data, job, args.epochs, args.batch)
    spec = msgspec.structs.replace(read_config(str(config)).spec, snapshot_interval=args.interval)
    write_config(msgspec.structs.replace(read_config(str(config)), spec=spec), str(config))
    return config


async def main(args: argparse.Namespace) -> None:
    """Pack the data, run uninterrupted and interrupted jobs alternately, print the overheads."""
    with tempfile.TemporaryDirectory(prefix="bench-resume-") as tmp:
        work = Path(tmp)
        data = work / "data"
        data.mkdir()
        images, labels = load_mnist(args.images)
        pack(data, images, labels)
        print(
            f"LeNet, MNIST {args.images} digits, {args.epochs} epochs, batch {args.batch}, "
            f"snapshot every {args.interval:g} epochs, OMP_NUM_THREADS={args.threads}"
        )
        print(
            f"{'round':<7}{'kill at':>8}{'plain s':>9}{'interval s':>11}{'killed+resumed s':>18}"
            f"{'lost s':>8}{'restart s':>10}{'overhead s':>11}{'ok':>4}{'loss plain/resumed':>20}"
        )
        ratios: list[float] = []
        for round_ in range(1, args.rounds + 1):
            plain = await attempt(new_job(work, data, args), args.threads)
            times = [t for t, _ in plain.snapshots]
            interval = statistics.median(b - a for a, b in itertools.pairwise(times))
            middle = len(times) // 2
            for fraction in args.kill_at:
                config = new_job(work, data, args)
                first = await attempt(config, args.threads, fraction * interval, middle)
                if not first.killed:
                    sys.exit("the child finished before it was killed: use a later snapshot")
                kill_time = first.wall
                last_time, last = first.snapshots[-1]
                job = Path(tempfile.mkdtemp(dir=work, prefix="job-"))
                second = await attempt(resumed_config(config, job, last), args.threads)
                total = first.wall + second.wall
                overhead = total - plain.wall
                ratios.append(overhead / interval)
                print(
                    f"{round_:<7}{fraction:>8.2f}{plain.wall:>9.2f}{interval:>11.2f}"
                    f"{total:>18.2f}{kill_time - last_time:>8.2f}"
                    f"{overhead - (kill_time - last_time):>10.2f}{overhead:>11.2f}"
                    f"{'yes' if overhead <= interval else 'no':>4}"
                    f"{plain.loss:>10.4f}/{second.loss:.4f}"
                )
    print(
        f"\noverhead / snapshot interval: {min(ratios):.2f}-{max(ratios):.2f} "
        "(within one interval when <= 1.00)"
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
