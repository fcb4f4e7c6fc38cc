"""Chaos: launch DIGITS (embedded, then a 3-node NATS cluster), inject each fault in turn while
jobs run, and print one table: scenario, end state, stall, events lost, duplicated points.

    .venv/bin/python bench/chaos.py [--mode embedded|cluster|all] [--only TEXT ...]
        [--digits 1000] [--epochs 20] [--build 6000] [--classify 8000] [--keep]

Per fault, a training job, a dataset build and a classify-many job run at once (the disk rows
and the poison ticket: a training job alone); the fault hits once all three have moved, and
each job is read through the gateway as a user reads it:

- end state: the job's status and message;
- stall: seconds from the fault until the job moves past where it was (next metric point, next
  built entries, next classified images), or ends Done;
- lost: metric points missing against the trainer's plan (epochs × points per epoch), images
  missing from the built splits or the classify-many result; must be 0;
- duplicated: the same (phase, iteration) point, or the same image classified, twice; must be 0.

Rows that depend on work not landed yet say FAIL and why; a row that cannot run here (no root
for tmpfs, no cluster support in the launcher) says SKIP and why; MISS: a job ended Done before
the fault could hit it (give it more work: --epochs, --build, --classify). The exit status is 1 when
any row failed (a must-be-0 column is not 0, an unexpected end, a job that never ended).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from chaos_system import Chaos, Down, launched, remount, root_tmpfs, writers
from chaos_work import (
    Build,
    Many,
    Training,
    Work,
    get,
    rounded,
    submit_dataset,
    until_end,
    wait_position,
    write_digits,
)
from system import sign_in

SERVICES = ("trainer", "gpu-broker", "gateway", "datasets", "inference")
MAX_DELIVER = 5  # the default: a poison ticket ends Error after this many deliveries


@dataclass
class Row:
    scenario: str
    work: str
    end: str = "-"
    stall: float | None = None
    lost: int | None = None
    duplicated: int | None = None
    verdict: str = "ok"
    why: str = ""


@dataclass
class Setup:
    """A running system with what each scenario needs: a training set, folders to build from,
    and (trained on first use) a model to classify with."""

    system: Chaos
    client: httpx.Client
    root: Path  # holds build/ and classify/: MNIST digits as PNG class folders
    dataset: str
    train_size: int
    args: argparse.Namespace
    classifier: str = ""

    @property
    def model(self) -> str:
        if not self.classifier:
            model = Training(self.client, self.dataset, self.train_size, epochs=1)
            end = until_end(model, 300)
            if end is None or end[0] != "Done":
                raise Down(f"the classifier did not train: {end}")
            self.classifier = model.id
        return self.classifier


def prepare(system: Chaos, args: argparse.Namespace) -> Setup:
    client = sign_in(system.url)
    write_digits(system.root / "build", args.build)
    write_digits(system.root / "classify", args.classify)
    train = system.root / "train"
    write_digits(train, args.digits)
    dataset = submit_dataset(client, train, "chaos-train")
    built = Work(client)
    built.path = f"/api/v1/datasets/{dataset}"
    end = until_end(built, 300)
    if end is None or end[0] != "Done":
        raise Down(f"the training set did not build: {end}")
    body = get(client, f"/api/v1/datasets/{dataset}") or {}
    train_size = next(
        t["entries"] for t in body["CreateDbTasks"] if t["split"] == "train" and t["entries"]
    )
    return Setup(system, client, system.root, dataset, train_size, args)


def three(s: Setup) -> list[Work]:
    """A training job, a dataset build and a classify-many job, all running."""
    model = s.model  # trained first: it would wait for the training job's device otherwise
    # Each starts once the one before it moves (a training child, an inference process loading
    # the model), the quickest last, so that all three are under way when the fault hits.
    train = Training(s.client, s.dataset, s.train_size, s.args.epochs)
    wait_position(train, 1e-9, 300)
    many = Many(s.client, model, s.root / "classify", s.args.classify)
    wait_position(many, 1e-9, 300)
    return [train, Build(s.client, s.root / "build", s.args.build), many]


def training(s: Setup) -> list[Work]:
    return [Training(s.client, s.dataset, s.train_size, s.args.epochs)]


def run_fault(
    s: Setup,
    name: str,
    works: Callable[[Setup], list[Work]],
    fault: Callable[[], object],
    expect: str = "Done",
    undo: Callable[[], object] = lambda: None,
) -> list[Row]:
    """Start the jobs, wait until each has moved, inject the fault, then follow each job to its
    end: one row per job. The stall is the longest time from the fault on in which a job showed
    no progress (points already in flight when the fault hit cannot hide the pause after them)."""
    jobs = works(s)
    rows = [Row(name, w.kind) for w in jobs]
    try:
        moving(jobs, 300)
    except RuntimeError as e:
        for w in jobs:
            w.abort()
        # A job that ended Done before the fault was not hit (a measurement miss, not a loss).
        verdict = "MISS" if "ended Done" in str(e) else "FAIL"
        return [Row(name, r.work, verdict=verdict, why=f"before the fault: {e}") for r in rows]
    last = [w.position() or 0.0 for w in jobs]
    fault_at = time.monotonic()
    changed = [fault_at] * len(jobs)
    ends: dict[int, tuple[str, str]] = {}
    try:
        fault()
        while len(ends) < len(jobs) and time.monotonic() - fault_at < s.args.end_timeout:
            for i, w in enumerate(jobs):
                if i in ends:
                    continue
                at, end, now = w.position(), w.ended(), time.monotonic()
                if (at is not None and at > last[i]) or (end and end[0] == "Done"):
                    rows[i].stall = max(rows[i].stall or 0.0, now - changed[i])
                    changed[i], last[i] = now, at if at is not None else last[i]
                if end is not None:
                    ends[i] = end
                    if expect != "Done":  # a fault that must end the job: how soon it did
                        rows[i].stall = now - fault_at
            time.sleep(0.2)
        for i, (row, w) in enumerate(zip(rows, jobs, strict=True)):
            judge(row, w, ends.get(i), expect, s.args.end_timeout)
    finally:
        undo()
    return rows


def moving(jobs: list[Work], timeout: float) -> None:
    """Wait until every job has moved and none has ended: the moment to inject a fault."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for w in jobs:
            if (end := w.ended()) is not None:
                raise RuntimeError(f"{w.kind} ended {end[0]} before the fault {end[1][:200]}")
        if all((w.position() or 0) > 0 for w in jobs):
            return
        time.sleep(0.2)
    raise RuntimeError(f"not every job moved within {timeout:.0f} s")


def judge(row: Row, work: Work, end: tuple[str, str] | None, expect: str, waited: float) -> None:
    if end is None:
        body = get(work.client, work.path) or {}
        row.end = f"{body.get('status', '?')} (no end)"
        row.verdict, row.why = "FAIL", f"never ended within {waited:.0f} s"
        work.abort()
        return
    status, message = end
    row.end = f"{status}: {message}" if message else status
    row.lost, row.duplicated = work.damage() if status == "Done" else (None, None)
    problems = []
    if status != expect:
        problems.append(f"ended {status}, expected {expect}")
    if expect == "Error" and (not message or "Traceback" in message):
        problems.append("no clear message")
    if row.lost:
        problems.append(f"{row.lost} lost")
    if row.duplicated:
        problems.append(f"{row.duplicated} duplicated")
    if problems:
        row.verdict, row.why = "FAIL", "; ".join(problems)


def fill(folder: Path) -> None:
    """Fill the filesystem of `folder` to the last byte (a real ENOSPC for the next write)."""
    chunk = b"\0" * (1 << 20)
    with open(folder / "chaos-filler", "wb", buffering=0) as f:
        with contextlib.suppress(OSError):
            while True:
                f.write(chunk)
        with contextlib.suppress(OSError):
            while True:
                f.write(b"\0" * 4096)


def read_only(s: Setup, name: str) -> Row:
    """The trainer's folder remounted read-only, then a job: it must end Error naming the path.
    (A file system with files open for writing, as under a running job, cannot be remounted
    read-only: EBUSY; so the folder turns read-only between jobs, the spare child killed.)"""
    folder = s.system.jobs_mount
    if folder is None:
        return Row(name, "training", verdict="SKIP", why=root_tmpfs())
    deadline = time.monotonic() + 60
    while True:
        try:
            remount(folder, "ro")
            break
        except subprocess.CalledProcessError:
            if time.monotonic() > deadline:
                return Row(name, "training", verdict="FAIL", why="busy: cannot remount read-only")
            # The trainer's warm spare child keeps its log open there: it goes (the next job
            # starts a child of its own, and the trainer makes a new spare after it).
            for pid in writers(folder):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(1)
    try:
        started = time.monotonic()
        job = Training(s.client, s.dataset, s.train_size, s.args.epochs)
        row = Row(name, job.kind)
        end = until_end(job, s.args.end_timeout)
        row.stall = time.monotonic() - started if end else None  # submitted → its end
        judge(row, job, end, "Error", s.args.end_timeout)
        return row
    finally:
        remount(folder, "rw")


def poison(s: Setup, name: str) -> Row:
    """A ticket that kills its worker every time: kill -9 the trainer each time the job starts
    an attempt. It must end Error naming the cause after max_deliver deliveries."""
    job = Training(s.client, s.dataset, s.train_size, s.args.epochs)
    row = Row(name, job.kind)
    kills, attempt = 0, None
    deadline = time.monotonic() + s.args.end_timeout * 2
    while kills <= MAX_DELIVER and time.monotonic() < deadline and job.ended() is None:
        body = get(s.client, job.path) or {}
        if body.get("status") == "Running" and body.get("attempt") != attempt:
            attempt = body.get("attempt")
            with contextlib.suppress(Down):
                s.system.kill("trainer")
                kills += 1
        time.sleep(0.3)
    judge(row, job, until_end(job, 60), "Error", 60)
    row.why = f"{kills} deliveries killed" + (f"; {row.why}" if row.why else "")
    return row


def nats_node(s: Setup, leader: bool) -> Callable[[], object]:
    def kill() -> None:
        names = {n.removeprefix("nats-") for n in s.system.pids() if n.startswith("nats-")}
        lead = s.system.stream_leader("DIGITS_METRICS")
        target = lead if leader else next(n for n in sorted(names) if n != lead)
        s.system.notes.append(f"killed nats node {target} (leader of DIGITS_METRICS: {lead})")
        s.system.kill(f"nats-{target}")

    return kill


def embedded(s: Setup) -> Iterator[tuple[str, Callable[[], list[Row]]]]:
    """The single-machine scenarios, most disruptive last."""
    for svc in SERVICES:
        name = f"kill -9 {svc}"
        yield name, lambda svc=svc, name=name: run_fault(s, name, three, lambda: s.system.kill(svc))
    jobs = s.system.jobs_mount
    full = "disk full (trainer folder, tmpfs)"
    if jobs is None:
        yield full, lambda: [Row(full, "training", verdict="SKIP", why=root_tmpfs())]
    else:
        filler = jobs / "chaos-filler"
        yield (
            full,
            lambda: run_fault(
                s, full, training, lambda: fill(jobs), "Error", lambda: filler.unlink()
            ),
        )
    frozen = "read-only folder (trainer folder, job started on it)"
    yield frozen, lambda: [read_only(s, frozen)]
    poisoned = "poison ticket (trainer killed at every delivery)"
    yield poisoned, lambda: [poison(s, poisoned)]
    bus = "kill -9 embedded nats-server"
    yield bus, lambda: run_fault(s, bus, three, lambda: s.system.kill("nats-server"))


def cluster(s: Setup) -> Iterator[tuple[str, Callable[[], list[Row]]]]:
    yield (
        "kill -9 NATS node (follower)",
        lambda: run_fault(s, "kill -9 NATS node (follower)", three, nats_node(s, leader=False)),
    )
    yield (
        "kill -9 NATS stream leader",
        lambda: run_fault(s, "kill -9 NATS stream leader", three, nats_node(s, leader=True)),
    )
    yield (
        "kill -9 trainer (cluster)",
        lambda: run_fault(s, "kill -9 trainer (cluster)", three, lambda: s.system.kill("trainer")),
    )


def cluster_supported() -> str:
    """Why `digits run --cluster` cannot be used ("" when it can): its help names the option."""
    usage = subprocess.run(
        [sys.executable, "-m", "digits_cli", "run", "--help"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return "" if "--cluster" in usage else "digits run has no --cluster yet (H2 is adding it)"


def run(args: argparse.Namespace) -> list[Row]:
    rows: list[Row] = []
    modes = ["embedded", "cluster"] if args.mode == "all" else [args.mode]
    for mode in modes:
        if mode == "cluster" and (why := cluster_supported()):
            rows.append(Row("cluster (all rows)", "-", verdict="SKIP", why=why))
            continue
        rows += run_mode(mode, args)
    return rows


def run_mode(mode: str, args: argparse.Namespace) -> list[Row]:
    """Every scenario of `mode` on one system, launched again if a fault left it down."""
    rows: list[Row] = []
    plan = embedded if mode == "embedded" else cluster
    done: set[str] = set()
    finished = False
    while not finished:
        with launched(3 if mode == "cluster" else 0, keep=args.keep) as system:
            s = prepare(system, args)
            finished = True
            scenarios = plan(s)
            for name, scenario in scenarios:
                if name in done or not selected(name, args.only):
                    continue
                done.add(name)
                print(f"== {mode}: {name}", flush=True)
                try:
                    got = scenario()
                except Exception as e:  # noqa: BLE001  (one broken scenario is a FAIL row, not the end)
                    got = [Row(name, "-", verdict="FAIL", why=f"{type(e).__name__}: {e}")]
                if not system.alive():
                    for r in got:
                        r.verdict = "FAIL"
                        r.why = (r.why + "; " if r.why else "") + "the system shut down"
                rows += got
                for r in got:
                    print("   ", line(r), flush=True)
                if not system.alive():
                    # The scenarios left, if any, get a fresh system.
                    finished = all(n in done or not selected(n, args.only) for n, _ in scenarios)
                    break
            for note in system.notes:
                print("   note:", note)
    return rows


def selected(name: str, only: list[str]) -> bool:
    return not only or any(o.lower() in name.lower() for o in only)


def line(r: Row) -> str:
    lost = "-" if r.lost is None else str(r.lost)
    dup = "-" if r.duplicated is None else str(r.duplicated)
    end = r.end if len(r.end) <= 110 else r.end[:107] + "..."
    verdict = r.verdict + (f": {r.why}" if r.why else "")
    return f"| {r.scenario} | {r.work} | {end} | {rounded(r.stall)} | {lost} | {dup} | {verdict} |"


def table(rows: list[Row]) -> str:
    head = "| scenario | job | end state | stall s | lost | duplicated | verdict |"
    return "\n".join([head, "|---|---|---|---|---|---|---|", *(line(r) for r in rows)])


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--mode", choices=("embedded", "cluster", "all"), default="all")
    p.add_argument("--only", nargs="*", default=[], help="scenarios whose name contains TEXT")
    p.add_argument("--digits", type=int, default=1000, help="MNIST digits of the training set")
    p.add_argument("--epochs", type=int, default=20, help="epochs of each training job")
    p.add_argument("--build", type=int, default=6000, help="digits of each dataset build")
    p.add_argument("--classify", type=int, default=8000, help="digits of each classify-many")
    p.add_argument("--end-timeout", type=float, default=600)
    p.add_argument("--keep", action="store_true", help="keep each data directory")
    return p


def main() -> int:
    args = parser().parse_args()
    started = time.monotonic()
    rows = run(args)
    print()
    print(table(rows))
    print(f"\n{len(rows)} rows in {time.monotonic() - started:.0f} s")
    return 1 if any(r.verdict == "FAIL" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
