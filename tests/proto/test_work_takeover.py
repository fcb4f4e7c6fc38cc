"""Tickets of a lost worker: real worker processes on a real nats-server, killed for real.

consume_tickets heartbeats while its handler works (a ticket held past its ack_wait stays
with its worker); a worker killed with SIGKILL loses its ticket to another within ack_wait
plus a fetch; a ticket that kills its worker every time ends (GiveUp) after max_deliver
deliveries, not before; a durable consumer created with ack_wait 30 s is updated in place.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig

from digits_proto.runtime import Outcome, consume_tickets
from digits_proto.runtime._work import ensure_consumer

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]
STREAM, SUBJECT, DURABLE = "TAKEOVER", "takeover.work.>", "takeover-worker"


class Reports:
    """What the worker processes say (core NATS), in order."""

    def __init__(self) -> None:
        self.items: list[tuple[str, dict | str, float]] = []
        self.arrived = asyncio.Event()

    async def on(self, msg) -> None:
        try:
            body = json.loads(msg.data)
        except ValueError:
            body = msg.data.decode()
        self.items.append((msg.subject, body, time.monotonic()))
        self.arrived.set()

    def of(self, subject: str) -> list[tuple[dict, float]]:
        return [(b, t) for s, b, t in self.items if s == subject]

    async def wait(self, subject: str, count: int = 1, timeout: float = 30.0):
        """The `count`-th report on `subject` (polled with a deadline)."""
        deadline = time.monotonic() + timeout
        while len(self.of(subject)) < count:
            left = deadline - time.monotonic()
            assert left > 0, f"no {subject} #{count}; got {self.items}"
            self.arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), left)
        return self.of(subject)[count - 1]


@pytest.fixture
async def reports(nc) -> AsyncIterator[Reports]:
    found = Reports()
    sub = await nc.subscribe("takeover.*", cb=found.on)
    yield found
    await sub.unsubscribe()


@contextlib.asynccontextmanager
async def worker(url: str, name: str, mode: str, reports: Reports, ack_wait=5.0, max_deliver=5):
    """A worker process, ready (its consumer bound); killed (SIGKILL) when the block ends."""
    before = len(reports.of("takeover.ready"))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.proto.ticket_worker",
        url,
        name,
        mode,
        str(ack_wait),
        str(max_deliver),
        cwd=ROOT,
    )
    try:
        await reports.wait("takeover.ready", before + 1)
        yield proc
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        await proc.wait()


async def acked_all(js, timeout: float = 10.0):
    """The consumer's info once no ticket awaits an ack (an ack is sent without a reply)."""
    deadline = time.monotonic() + timeout
    while (info := await js.consumer_info(STREAM, DURABLE)).num_ack_pending:
        assert time.monotonic() < deadline, info
        await asyncio.sleep(0.1)
    return info


async def test_an_existing_30s_consumer_is_updated_to_the_new_ack_wait_in_place(js) -> None:
    """A durable consumer an older release created (ack_wait 30 s, JetStream max_deliver 3)
    becomes ack_wait 5 s with no JetStream bound when the service restarts, and keeps its
    position: the ticket published before is handled, once."""
    await js.add_stream(StreamConfig(name=STREAM, subjects=[SUBJECT]))
    old = ConsumerConfig(
        durable_name=DURABLE,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=30.0,
        max_deliver=3,
        filter_subject=SUBJECT,
    )
    await js.add_consumer(STREAM, config=old)
    assert (await js.consumer_info(STREAM, DURABLE)).config.ack_wait == 30.0
    await js.publish("takeover.work.one", b"one")
    handled: list[bytes] = []
    stop = asyncio.Event()

    async def handle(msg) -> Outcome:
        handled.append(msg.data)
        stop.set()
        return Outcome.ACK

    await asyncio.wait_for(
        consume_tickets(js, STREAM, SUBJECT, DURABLE, handle, stop, ack_wait=5.0), 30
    )
    info = await acked_all(js)
    assert info.config.ack_wait == 5.0
    assert info.config.max_deliver in (None, -1)
    assert handled == [b"one"] and info.num_pending == 0 and info.num_redelivered == 0


async def test_a_killed_workers_ticket_is_taken_over_within_ack_wait(nats_url, js, reports) -> None:
    """Worker A holds a ticket for 2 × ack_wait (its heartbeats keep it: B, waiting beside it,
    never gets it); A is killed with SIGKILL; B takes the ticket within ack_wait + 3 s."""
    await js.add_stream(StreamConfig(name=STREAM, subjects=[SUBJECT]))
    ack_wait = 5.0
    async with worker(nats_url, "a", "hold", reports, ack_wait) as a:
        await js.publish("takeover.work.job", b"job")
        held, _ = await reports.wait("takeover.held")
        assert held["worker"] == "a" and held["delivered"] == 1
        async with worker(nats_url, "b", "ack", reports, ack_wait):
            # Heartbeats: past twice ack_wait the ticket is still A's alone.
            with pytest.raises(AssertionError):
                await reports.wait("takeover.acked", timeout=2 * ack_wait)
            assert len(reports.of("takeover.held")) == 1
            os.kill(a.pid, signal.SIGKILL)
            killed = time.monotonic()
            acked, at = await reports.wait("takeover.acked", timeout=ack_wait + 10)
            took = at - killed
            print(f"taken over {took:.1f} s after the kill (ack_wait {ack_wait:g} s)")
            assert acked["worker"] == "b" and acked["delivered"] == 2
            assert took <= ack_wait + 3.0  # the ack timer, then the waiting pull (CI is busy)


async def test_a_poison_ticket_ends_after_max_deliver_deliveries_not_before(
    nats_url, js, reports
) -> None:
    """Every worker that takes the ticket dies (os._exit); after 3 such deliveries the 4th
    worker gives it up (losses=3) without running it, and the ticket is gone for good."""
    await js.add_stream(StreamConfig(name=STREAM, subjects=[SUBJECT]))
    await js.publish("takeover.work.poison", b"poison")
    for n in range(1, 4):
        async with worker(nats_url, f"w{n}", "exit", reports, 1.0, 3) as proc:
            entered, _ = await reports.wait("takeover.entered", n, timeout=20)
            assert entered["delivered"] == n and not reports.of("takeover.gave_up")
            assert await asyncio.wait_for(proc.wait(), 10) == 3
    async with worker(nats_url, "w4", "exit", reports, 1.0, 3) as last:
        gave_up, _ = await reports.wait("takeover.gave_up", timeout=20)
        assert gave_up["worker"] == "w4" and gave_up["losses"] == 3
        assert len(reports.of("takeover.entered")) == 3 and last.returncode is None
        info = await acked_all(js)
        assert info.num_pending == 0 and info.num_redelivered == 0


async def test_on_an_r3_stream_the_consumer_is_replicated_and_updated_in_place(
    nats_cluster,
) -> None:
    """On a 3-node cluster the ticket consumer of an R3 stream gets 3 replicas and a restart
    with another ack_wait updates it in place (no "consumer already exists", no recreation)."""
    nc = await nats.connect(nats_cluster.url.split(","), max_reconnect_attempts=-1)
    try:
        js = nc.jetstream()
        await js.add_stream(StreamConfig(name=STREAM, subjects=[SUBJECT], num_replicas=3))
        await ensure_consumer(js, STREAM, SUBJECT, DURABLE, 30.0)
        await js.publish("takeover.work.one", b"one")
        await ensure_consumer(js, STREAM, SUBJECT, DURABLE, 5.0)
        info = await js.consumer_info(STREAM, DURABLE)
        assert info.config.ack_wait == 5.0 and info.num_pending == 1
        assert info.cluster is not None and len(info.cluster.replicas or []) == 2
    finally:
        await nc.close()
