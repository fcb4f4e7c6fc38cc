"""The read side against its bus: the gateway's projection vs a bare JetStream pull.

Records a lab's history (`--jobs` LeNet jobs' worth of events, `tests/gateway/long_history.py`:
datasets, queued waves, leases, metrics, progress, snapshots, aborts and deletes) straight to
the streams of a private nats-server, then measures, in the same run:

- rebuild: a fresh DuckDB file projected from sequence 1 (the gateway's `Projection`, default
  batch), against a bare pull of the same streams (same batch sizes, one ack per batch, no
  decoding, nothing written);
- live: the projection (then the bare pull) already running while another process publishes
  the history (as the services would);
- load: `EventStore.load` of one `--aggregate`-event aggregate, against one get per event.

Prints events/s, per stream and overall, and the ratios. Never asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import nats
import structlog
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import FetchTimeoutError, NotFoundError

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from digits_gateway.readmodel.db import ReadModel
from digits_gateway.readmodel.live import Hub
from digits_gateway.readmodel.runner import BATCH_SCALE, DEFAULT_SCALE, Projection
from digits_gateway.settings import Settings
from digits_proto import codec, subjects
from digits_proto.models import MetricsRecorded
from digits_proto.runtime import EventStore, Metrics, ensure_streams
from tests.conftest import free_port
from tests.gateway import long_history

BATCH = Settings().fetch_batch


def batch_of(stream: str) -> int:
    return BATCH * BATCH_SCALE.get(stream, DEFAULT_SCALE)


async def _quiet(_: Exception) -> None:
    """nats-py logs every refused connect while the server starts: not news here."""


class Server:
    """A private nats-server with every stream of the system."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="bench-projection-"))
        self.port = free_port()
        binary = Path(sys.executable).parent / "nats-server"
        self.proc = subprocess.Popen(
            [str(binary), "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", str(self.dir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    async def connect(self) -> tuple[nats.NATS, JetStreamContext]:
        for _ in range(400):  # a loaded 2-core box may take seconds to start it
            try:
                nc = await nats.connect(
                    f"nats://127.0.0.1:{self.port}", allow_reconnect=False, error_cb=_quiet
                )
                break
            except Exception:  # noqa: BLE001 - not listening yet
                await asyncio.sleep(0.05)
        else:
            raise RuntimeError("nats-server did not start")
        js = nc.jetstream(timeout=30)
        await ensure_streams(js)
        return nc, js

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


async def bare_pull(js: JetStreamContext, stream: str, until: int, name: str) -> float:
    """Pull `stream` up to sequence `until` (batches as the projection's, one ack each);
    the seconds it took."""
    config = ConsumerConfig(
        durable_name=name,
        ack_policy=AckPolicy.ALL,
        deliver_policy=DeliverPolicy.ALL,
        max_ack_pending=20_000,
    )
    sub = await js.pull_subscribe(
        subjects.EVENT_STREAMS[stream], durable=name, stream=stream, config=config
    )
    started, last = time.perf_counter(), 0
    while last < until:
        try:
            msgs = await sub.fetch(batch_of(stream), timeout=1.0)
        except (FetchTimeoutError, TimeoutError):
            continue
        last = msgs[-1].metadata.sequence.stream
        await msgs[-1].ack()
    elapsed = time.perf_counter() - started
    await sub.unsubscribe()
    await js.delete_consumer(stream, name)
    return elapsed


async def projected(js: JetStreamContext, heads: dict[str, int], folder: Path) -> dict[str, float]:
    """Run the gateway's projection into a fresh file until every head is applied; seconds
    per stream (from start to its last event applied)."""
    db = ReadModel(folder / f"rm-{time.monotonic_ns()}.duckdb")
    projection = Projection(db, js, Hub(), Metrics("bench"), BATCH)
    started = time.perf_counter()
    await projection.start()
    done: dict[str, float] = {}
    while len(done) < len(heads):
        for stream, head in heads.items():
            if stream not in done and projection.positions[stream] >= head:
                done[stream] = time.perf_counter() - started
        await asyncio.sleep(0.01)
    await projection.stop()
    db.close()
    return done


async def pulled(js: JetStreamContext, heads: dict[str, int]) -> dict[str, float]:
    """Bare pulls of every stream at once, as the projection runs them."""
    names = {s: f"bare{time.monotonic_ns()}{i}" for i, s in enumerate(heads)}
    times = await asyncio.gather(*(bare_pull(js, s, h, names[s]) for s, h in heads.items()))
    return dict(zip(heads, times, strict=True))


async def heads_of(js: JetStreamContext) -> dict[str, int]:
    heads = {}
    for stream in subjects.EVENT_STREAMS:
        last = (await js.stream_info(stream)).state.last_seq
        if last:
            heads[stream] = last
    return heads


def report(label: str, counts: dict[str, int], ours: dict[str, float], bare: dict[str, float]):
    print(f"\n{label}: events/s (seconds) per stream, the projection vs a bare pull", flush=True)
    for stream in sorted(counts, key=lambda s: -counts[s]):
        n = counts[stream]
        o, b = ours[stream], bare[stream]
        print(
            f"  {stream:16s} {n:8d} ev  projection {n / o:9.0f}/s ({o:6.2f} s)"
            f"  bare {n / b:9.0f}/s ({b:6.2f} s)  ratio {b / o:5.2f}"
        )
    total = sum(counts.values())
    o, b = max(ours.values()), max(bare.values())
    print(
        f"  {'all':16s} {total:8d} ev  projection {total / o:9.0f}/s ({o:6.2f} s)"
        f"  bare {total / b:9.0f}/s ({b:6.2f} s)  ratio {b / o:5.2f}"
    )


async def timed_live(
    js: JetStreamContext,
    url: str,
    jobs: int,
    counts: dict[str, int],
    run: Callable[[dict[str, int]], Awaitable[dict]],
) -> dict[str, float]:
    """Start the reader on the streams' final heads, then let a publisher process (the
    services are other processes too) publish the history: the reader's seconds."""
    before = await heads_of(js)
    heads = {s: before.get(s, 0) + n for s, n in counts.items()}
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--publish-to",
        url,
        "--jobs",
        str(jobs),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdin is not None and child.stdout is not None
    await child.stdout.readline()  # its history is generated: publishing starts on our word
    task = asyncio.create_task(run(heads))
    await asyncio.sleep(0.5)  # the reader subscribed and waits
    child.stdin.write(b"go\n")
    await child.stdin.drain()
    result = await task
    await child.wait()
    return result


async def publisher(url: str, jobs: int) -> None:
    """The child of `timed_live`: generate the history, say so, wait for the word, publish."""
    events = long_history.history(jobs)
    nc = await nats.connect(url)
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await long_history.publish(nc.jetstream(timeout=30), events)
    await nc.close()


async def rebuild_and_live(jobs: int, folder: Path, parts: set[str]) -> None:
    events = long_history.history(jobs)
    counts = dict(long_history.per_stream(events))
    print(f"history: {jobs} jobs, {len(events)} events", flush=True)
    if "rebuild" in parts:
        await rebuild(events, counts, folder)
    if "live" in parts:
        await lived(jobs, counts, folder)


async def rebuild(events: list, counts: dict[str, int], folder: Path) -> None:
    server = Server()
    try:
        nc, js = await server.connect()
        started = time.perf_counter()
        await long_history.publish(js, events)
        print(f"published in {time.perf_counter() - started:.1f} s", flush=True)
        heads = await heads_of(js)
        ours = await projected(js, heads, folder)
        bare = await pulled(js, heads)
        report("rebuild", counts, ours, bare)
        await nc.close()
    finally:
        server.stop()


async def lived(jobs: int, counts: dict[str, int], folder: Path) -> None:
    live: dict[str, dict[str, float]] = {}
    for label in ("projection", "bare"):
        server = Server()
        try:
            nc, js = await server.connect()

            async def run(
                heads: dict[str, int], label: str = label, js: JetStreamContext = js
            ) -> dict[str, float]:
                if label == "projection":
                    return await projected(js, heads, folder)
                return await pulled(js, heads)

            url = f"nats://127.0.0.1:{server.port}"
            live[label] = await timed_live(js, url, jobs, counts, run)
            await nc.close()
        finally:
            server.stop()
    report("live (reader running while the history is published)", counts, *live.values())


async def load(count: int) -> None:
    server = Server()
    try:
        nc, js = await server.connect()
        subject = subjects.model_metrics("m1")
        for i in range(count):
            point = MetricsRecorded(
                model_id="m1", phase="train", iteration=i, epoch=i / 100, values={"loss": 0.5}
            )
            await js.publish_async(subject, codec.encode(point))
        await js.publish_async_completed()
        store = EventStore(js, subjects.STREAM_METRICS, codec.metric_events)
        started = time.perf_counter()
        events, _ = await store.load(subject)
        batched = time.perf_counter() - started
        started, seq, n = time.perf_counter(), 1, 0
        while True:
            try:
                msg = await js.get_msg(subjects.STREAM_METRICS, seq=seq, subject=subject, next=True)
            except NotFoundError:
                break
            codec.metric_events.decode(msg.data or b"")
            seq, n = (msg.seq or 0) + 1, n + 1
        one_by_one = time.perf_counter() - started
        print(
            f"\nload: one aggregate of {len(events)} events: EventStore.load {batched:.3f} s, "
            f"one get per event ({n}) {one_by_one:.3f} s, {one_by_one / batched:.1f}x"
        )
        await nc.close()
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--aggregate", type=int, default=10_000)
    parser.add_argument("--parts", default="rebuild,live,load", help="which measurements")
    parser.add_argument("--publish-to", default="", help=argparse.SUPPRESS)  # live's publisher
    args = parser.parse_args()
    if args.publish_to:
        asyncio.run(publisher(args.publish_to, args.jobs))
        return
    parts = set(args.parts.split(","))
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    print(f"load average: {os.getloadavg()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-projection-db-") as folder:
        asyncio.run(rebuild_and_live(args.jobs, Path(folder), parts))
    if "load" in parts:
        asyncio.run(load(args.aggregate))
    print(f"load average: {os.getloadavg()}", flush=True)


if __name__ == "__main__":
    main()
