"""Live load: SSE clients, API pollers and training jobs at once; metric-to-browser latency.

    .venv/bin/python bench/live_load.py [--seconds 120] [--sse 100] [--pollers 20] [--jobs 5]
        [--images 450]

The system is started through the launcher (`python -m digits_cli run`) in a temporary data
directory with `--jobs` CPU slots. One dataset of `--images` MNIST digits is built and `--jobs`
LeNet models train on it at once (many epochs: they are aborted at the end). Once every job has
sent its first metric, for `--seconds`:

- `--sse` clients follow the jobs' `/jobs/<id>/events` (spread evenly over the jobs), as open
  job pages do; a dropped stream reconnects with Last-Event-ID, as a browser does;
- `--pollers` clients each make one small API read a second (`/api/v1/models/<id>`,
  `/api/v1/devices`, `/api/v1/queue`, `/api/v1/jobs?limit=20`, in turn).

**Metric-to-browser latency** is the time from a metric event's publish to its arrival at an SSE
client: each SSE `metric` message's id carries its `DIGITS_METRICS` sequence; after the run the
stream's own timestamp of that sequence (set by nats-server when it stored the publish) is read
back and subtracted from the arrival time (one clock: same machine). Every delivery counts (a
metric followed by 20 clients counts 20 times). **Errors**: a stream or request that failed or
answered other than 200; a stream the gateway ended (the client fell behind) is counted apart.
Prints, never asserts. The per-account rate limit is raised for the run: the pollers all sign in
as one admin.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import time
from pathlib import Path

import httpx
import msgspec
import nats
import uvloop
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from system import TERMINAL, mnist_dataset, processes, retried, running, sign_in, wait

from digits_proto import subjects
from digits_proto.runtime import NatsCredentials

METRICS = subjects.STREAM_METRICS


class Tally:
    """What the clients saw: (metric seq, arrival time) per delivery, poll times, errors."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[int, float]] = []
        self.polls: dict[str, list[float]] = {}
        self.errors: dict[str, int] = {}
        self.lags: list[float] = []  # this process's own event-loop lag (a client-side delay)
        self.cut_off = 0  # streams the gateway ended (client fell behind) or that ended early

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1


def metric_seq(event_id: str) -> int | None:
    for part in event_id.split(","):
        stream, _, seq = part.rpartition(":")
        if stream == METRICS and seq.isdigit():
            return int(seq)
    return None


async def follow(client: httpx.AsyncClient, job: str, tally: Tally, until: float) -> None:
    """One job page's event stream until `until` (monotonic), reconnecting as a browser does."""
    last_id: str | None = None
    while time.monotonic() < until:
        headers = {"Last-Event-ID": last_id} if last_id else {}
        try:
            async with client.stream("GET", f"/jobs/{job}/events", headers=headers) as r:
                if r.status_code != 200:
                    tally.error(f"sse {r.status_code}")
                    await asyncio.sleep(1)
                    continue
                kind = event_id = ""
                async for line in r.aiter_lines():
                    if line.startswith("event:"):
                        kind = line[6:].strip()
                    elif line.startswith("id:"):
                        event_id = last_id = line[3:].strip()
                    elif not line:  # the end of one message
                        if kind == "metric" and (seq := metric_seq(event_id)) is not None:
                            tally.arrivals.append((seq, time.time()))
                        kind = event_id = ""
                    if time.monotonic() >= until:
                        return
                tally.cut_off += 1
        except httpx.HTTPError as e:
            if time.monotonic() < until:
                tally.error(f"sse {type(e).__name__}")
                await asyncio.sleep(1)


async def poll(client: httpx.AsyncClient, jobs: list[str], n: int, tally: Tally, until: float):
    """One small API read a second, cycling through a few kinds."""
    paths = [
        f"/api/v1/models/{jobs[n % len(jobs)]}",
        "/api/v1/devices",
        "/api/v1/queue",
        "/api/v1/jobs?limit=20",
    ]
    i = n
    while time.monotonic() < until:
        path = paths[i % len(paths)]
        i += 1
        started = time.perf_counter()
        try:
            r = await client.get(path)
            kind = path.split("?")[0].removeprefix("/api/v1/").split("/")[0]
            tally.polls.setdefault(kind, []).append(time.perf_counter() - started)
            if r.status_code != 200:
                tally.error(f"GET {path.split('?')[0].rsplit('/', 1)[-1]} {r.status_code}")
        except httpx.HTTPError as e:
            tally.error(f"GET {type(e).__name__}")
        await asyncio.sleep(max(0.0, 1.0 - (time.perf_counter() - started)))


async def lag(tally: Tally, until: float) -> None:
    """How late this process's loop wakes from a 10 ms sleep: its part of any latency."""
    while time.monotonic() < until:
        started = time.perf_counter()
        await asyncio.sleep(0.01)
        tally.lags.append(time.perf_counter() - started - 0.01)


def renice_training(nice: int) -> None:
    """Lower the priority of every training child (`digits_trainer.child`) to `nice`."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            pid = int(entry.name)
            child = b"digits_trainer.child" in (entry / "cmdline").read_bytes()
            if child and os.getpriority(os.PRIO_PROCESS, pid) < nice:
                os.setpriority(os.PRIO_PROCESS, pid, nice)


async def renicer(nice: int, until: float) -> None:
    while time.monotonic() < until:
        renice_training(nice)
        await asyncio.sleep(1)


async def load(url: str, cookies: httpx.Cookies, jobs: list[str], args) -> Tally:
    tally = Tally()
    until = time.monotonic() + args.seconds
    limits = httpx.Limits(max_connections=args.sse + args.pollers + 10)
    timeout = httpx.Timeout(30, read=60)
    async with (
        httpx.AsyncClient(base_url=url, cookies=cookies, limits=limits, timeout=timeout) as sse,
        httpx.AsyncClient(base_url=url, cookies=cookies, timeout=30) as api,
    ):
        tasks = [follow(sse, jobs[i % len(jobs)], tally, until) for i in range(args.sse)]
        tasks += [poll(api, jobs, n, tally, until) for n in range(args.pollers)]
        tasks.append(lag(tally, until))
        if args.nice_training:
            tasks.append(renicer(args.nice_training, until))
        await asyncio.gather(*tasks)
    return tally


async def stored_at(nats_url: str, creds: Path, first: int, last: int) -> dict[int, float]:
    """seq -> the stream's timestamp (UNIX s) of every metric event in [first, last]."""
    c = msgspec.json.decode(creds.read_bytes(), type=NatsCredentials)
    nc = await nats.connect(nats_url, user=c.user, password=c.password)
    js = nc.jetstream()
    config = ConsumerConfig(
        deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
        opt_start_seq=first,
        ack_policy=AckPolicy.NONE,
        inactive_threshold=30.0,
    )
    sub = await js.pull_subscribe(subjects.EVENT_STREAMS[METRICS], stream=METRICS, config=config)
    found: dict[int, float] = {}
    try:
        while True:
            try:
                msgs = await sub.fetch(1000, timeout=2)
            except nats.errors.TimeoutError:
                break
            for m in msgs:
                found[m.metadata.sequence.stream] = m.metadata.timestamp.timestamp()
            if max(found, default=0) >= last:
                break
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
        await nc.close()
    return found


def cpu_seconds(pid: int) -> float:
    with contextlib.suppress(OSError):
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return 0.0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seconds", type=float, default=120)
    p.add_argument("--sse", type=int, default=100, help="SSE clients (job pages)")
    p.add_argument("--pollers", type=int, default=20, help="API clients, one read a second")
    p.add_argument("--jobs", type=int, default=5, help="training jobs, one CPU slot each")
    p.add_argument("--images", type=int, default=450)
    p.add_argument(
        "--nice-training",
        type=int,
        default=0,
        help="renice the training children to this (what-if: training below the control plane)",
    )
    p.add_argument("--keep", action="store_true", help="keep the data directory (path printed)")
    args = p.parse_args()

    settings = {
        "DIGITS_CPU_SLOTS": str(args.jobs),
        "DIGITS_GATEWAY_RATE_LIMIT_PER_MINUTE": "1000000",
    }
    with running(args.keep, **settings) as system:
        client = sign_in(system.url)
        dataset = mnist_dataset(client, system, args.images)
        jobs = []
        for i in range(args.jobs):
            r = client.post(
                "/models/images/classification.json",
                data=dict(
                    dataset=dataset,
                    standard_networks="lenet",
                    train_epochs="1000",
                    batch_size="16",
                    model_name=f"live-{i}",
                ),
            )
            r.raise_for_status()
            jobs.append(r.json()["id"])
        try:
            measure(args, system, client, jobs)
        finally:
            for job in jobs:
                with contextlib.suppress(httpx.HTTPError):
                    retried(client.post, f"/models/{job}/abort")


def measure(args, system, client: httpx.Client, jobs: list[str]) -> None:
    def all_training() -> bool:
        for job in jobs:
            r = retried(client.get, f"/api/v1/models/{job}/metrics")
            if r.status_code != 200 or not r.json():
                return False
            if retried(client.get, f"/models/{job}/status").json()["status"] in TERMINAL:
                sys.exit(f"job {job} ended before the run: {client.get(f'/models/{job}.json')}")
        return True

    wait(all_training, 600, "every job's first metric")
    gateway = processes(system.launcher.pid)["gateway"]
    cpu_before, load_before = cpu_seconds(gateway), os.getloadavg()[0]
    started = time.monotonic()
    tally = uvloop.run(load(system.url, client.cookies, jobs, args))
    wall = time.monotonic() - started
    gateway_cpu = (cpu_seconds(gateway) - cpu_before) / wall
    seqs = [s for s, _ in tally.arrivals]
    stamps = uvloop.run(
        stored_at(system.nats_url, system.admin_creds, min(seqs, default=1), max(seqs, default=0))
    )
    latencies = [(at - stamps[s]) * 1000 for s, at in tally.arrivals if s in stamps]
    polls = [t * 1000 for times in tally.polls.values() for t in times]
    print(
        f"live load: {args.sse} SSE clients on {len(jobs)} training jobs, {args.pollers} "
        f"pollers, {wall:.0f} s; load {load_before:.1f} → {os.getloadavg()[0]:.1f}; "
        f"gateway CPU {gateway_cpu:.0%} of a core"
        + (f"; training children at nice {args.nice_training}" if args.nice_training else "")
    )
    print(
        f"  metric → browser: {len(latencies)} deliveries of {len(set(seqs))} metric events: "
        f"p50 {pct(latencies, 0.5):.0f} ms, p99 {pct(latencies, 0.99):.0f} ms, "
        f"max {max(latencies, default=float('nan')):.0f} ms"
        + (f", mean {statistics.fmean(latencies):.0f} ms" if latencies else "")
    )
    print(
        f"  API polls: {len(polls)}: p50 {pct(polls, 0.5):.0f} ms, p99 {pct(polls, 0.99):.0f} ms,"
        f" max {max(polls, default=float('nan')):.0f} ms"
    )
    lags = [t * 1000 for t in tally.lags]
    print(
        f"  this client's own loop lag (part of both): p50 {pct(lags, 0.5):.0f} ms, "
        f"p99 {pct(lags, 0.99):.0f} ms"
    )
    for kind, times in sorted(tally.polls.items()):
        ms = [t * 1000 for t in times]
        print(f"    {kind:>8}: p50 {pct(ms, 0.5):.0f} ms, p99 {pct(ms, 0.99):.0f} ms")
    print(
        f"  errors: {sum(tally.errors.values())} {tally.errors or ''}; streams cut off by the "
        f"gateway: {tally.cut_off}"
    )


if __name__ == "__main__":
    main()
