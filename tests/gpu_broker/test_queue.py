"""The shared device queue over a real nats-server: order, priority, caps, withdrawal, nodes."""

from __future__ import annotations

import asyncio

import pytest
from nats.js.errors import KeyNotFoundError

from digits_proto import codec, subjects
from digits_proto.gpus import AcquireLease, LeaseAccepted, LeaseExpired
from digits_proto.models import ModelAborted
from digits_proto.replies import Rejected
from digits_proto.runtime import EventStore, request
from tests.fakes.fake_nvml import FakeNvml
from tests.gpu_broker.bus import acquire, last_queue, node_events, release, until


async def queue_with_b_aborted(start_broker, nc, js) -> LeaseAccepted:
    """One device held by a, b and c asking after it, then b aborted on the bus and gone from
    the published queue: a's lease."""
    await start_broker(FakeNvml(count=1), queue_ttl=30.0)
    a = await acquire(nc, "a")
    assert isinstance(a, LeaseAccepted)
    await acquire(nc, "b")
    await acquire(nc, "c")
    abort = ModelAborted(model_id="b", reason="user")
    await js.publish(subjects.model_events("b"), codec.encode(abort))

    async def b_gone():
        return [e.job_id for e in await last_queue(js)] == ["c"]

    await until(b_gone)
    return a


async def test_jobs_are_served_in_submission_order_when_a_device_frees(start_broker, nc) -> None:
    """b asked before c: after the release c's ask is refused until b has its device."""
    await start_broker(FakeNvml(count=1))
    a = await acquire(nc, "a")
    assert isinstance(a, LeaseAccepted)
    for job in ("b", "c"):
        assert isinstance(await acquire(nc, job), Rejected)
    await release(nc, a.lease_id)
    late = await acquire(nc, "c")
    assert isinstance(late, Rejected) and late.code == 409 and late.message == "waiting: behind b"
    assert isinstance(await acquire(nc, "b"), LeaseAccepted)


async def test_higher_priority_overtakes_and_the_queue_is_published(start_broker, nc, js) -> None:
    """A priority-5 job asked last is first in the published queue and gets the device first."""
    await start_broker(FakeNvml(count=1))
    a = await acquire(nc, "a")
    assert isinstance(a, LeaseAccepted)
    await acquire(nc, "b")
    await acquire(nc, "urgent", priority=5)

    async def published():
        entries = await last_queue(js)
        return [(e.job_id, e.position, e.priority) for e in entries] == [
            ("urgent", 1, 5),
            ("b", 2, 0),
        ]

    await until(published)
    await release(nc, a.lease_id)
    assert isinstance(await acquire(nc, "b"), Rejected)
    assert isinstance(await acquire(nc, "urgent", priority=5), LeaseAccepted)

    async def only_b():
        return [e.job_id for e in await last_queue(js)] == ["b"]

    await until(only_b)


async def test_a_job_aborted_while_waiting_leaves_the_queue(start_broker, nc, js) -> None:
    """ModelAborted on the bus removes the job from the queue at once; the next one moves up."""
    a = await queue_with_b_aborted(start_broker, nc, js)
    await release(nc, a.lease_id)
    assert isinstance(await acquire(nc, "c"), LeaseAccepted)


async def test_an_ask_arriving_after_the_abort_does_not_requeue_the_job(
    start_broker, nc, js
) -> None:
    """A trainer's ask already on its way when the job was aborted (it read the job as waiting
    just before) is turned away: the job does not sit in the queue until the key's TTL."""
    await queue_with_b_aborted(start_broker, nc, js)
    late = await acquire(nc, "b")
    assert isinstance(late, Rejected) and late.code == 409
    assert "aborted" in late.message
    queue = await js.key_value(subjects.KV_QUEUE)
    with pytest.raises(KeyNotFoundError):
        await queue.get("job.b")
    assert (await queue.get("job.c")).value


async def test_a_waiting_job_that_stops_asking_expires_from_the_queue(start_broker, nc, js) -> None:
    """b's holder died while waiting: after the queue TTL c is no longer behind it."""
    await start_broker(FakeNvml(count=1), queue_ttl=1.0)
    a = await acquire(nc, "a")
    await acquire(nc, "b")
    await acquire(nc, "c")
    assert isinstance(a, LeaseAccepted)
    await release(nc, a.lease_id)
    assert isinstance(await acquire(nc, "c"), Rejected)

    async def c_served():
        reply = await acquire(nc, "c")
        return isinstance(reply, LeaseAccepted)

    await until(c_served)

    async def empty():
        return await last_queue(js) == []

    await until(empty)


async def test_per_user_cap_holds_back_only_that_user(start_broker, nc) -> None:
    """With max_jobs_per_user=1 alice's second job waits while bob's later one runs."""
    # Leases that outlive a slow moment: nobody renews alice's first one here (2 s expired it).
    await start_broker(FakeNvml(count=3), max_jobs_per_user=1, lease_ttl=30.0)
    assert isinstance(await acquire(nc, "a1", user="alice"), LeaseAccepted)
    capped = await acquire(nc, "a2", user="alice")
    assert isinstance(capped, Rejected) and capped.message == "waiting: user cap"
    assert isinstance(await acquire(nc, "b1", user="bob"), LeaseAccepted)


async def test_queue_survives_a_broker_restart(start_broker, nc, js) -> None:
    """A new broker instance reads the waiting jobs from the bucket and keeps their order."""
    first = await start_broker(FakeNvml(count=1), queue_ttl=30.0)
    a = await acquire(nc, "a")
    assert isinstance(a, LeaseAccepted)
    await acquire(nc, "b")
    first.stop.set()
    await start_broker(FakeNvml(count=1), queue_ttl=30.0)
    await release(nc, a.lease_id)
    assert isinstance(await acquire(nc, "c"), Rejected)
    assert isinstance(await acquire(nc, "b"), LeaseAccepted)


async def test_pinned_devices_run_only_on_the_node_that_has_them(start_broker, nc) -> None:
    """Index 1 exists only on n2: n1 says wait (not 400), n2 grants it; both nodes serve."""
    await start_broker(FakeNvml(count=1), node_id="n1")
    await start_broker(FakeNvml(count=2), node_id="n2")
    here = await acquire(nc, "p", indexes=[1], node="n1")
    assert isinstance(here, Rejected) and here.code == 409
    there = await acquire(nc, "p", indexes=[1], node="n2")
    assert isinstance(there, LeaseAccepted) and there.node_id == "n2"
    assert [d.index for d in there.devices] == [1]
    other = await acquire(nc, "q", node="n1")
    assert isinstance(other, LeaseAccepted) and other.node_id == "n1"
    nowhere = await acquire(nc, "r", indexes=[5], node="n1")
    assert isinstance(nowhere, Rejected) and (nowhere.code, nowhere.field) == (400, "select_gpus")


async def test_a_dead_nodes_leases_are_recorded_expired_by_a_live_broker(
    start_broker, nc, js
) -> None:
    """n1's broker and its holder die: once n1 falls silent, n2's broker records LeaseExpired."""
    dead = await start_broker(FakeNvml(count=1), node_id="n1", lease_ttl=1.0)
    await start_broker(FakeNvml(count=1), node_id="n2", lease_ttl=1.0)
    lease = await acquire(nc, "orphan", node="n1")
    assert isinstance(lease, LeaseAccepted) and lease.node_id == "n1"
    dead.stop.set()

    async def expired():
        events = await node_events(js, "n1")
        return [e for e in events if isinstance(e, LeaseExpired)]

    (event,) = await until(expired, timeout=10.0)
    assert event.lease_id == lease.lease_id and event.job_id == "orphan"


async def test_many_jobs_on_two_devices_are_served_in_queue_order(start_broker, nc) -> None:
    """8 holders keep asking for 2 GPUs: never more than 2 held, every job served, and in
    priority-then-submission order (a job is never served before one ranked 2+ ahead of it)."""
    await start_broker(FakeNvml(count=2), queue_ttl=5.0)
    jobs = [(f"j{i:02d}", 5 if i % 4 == 3 else 0, 1000.0 + i) for i in range(8)]
    ranked = [j for j, _, _ in sorted(jobs, key=lambda j: (-j[1], j[2]))]
    held: set[str] = set()
    peak = 0
    served: list[str] = []

    async def holder(job_id: str, priority: int, submitted: float) -> None:
        nonlocal peak
        while True:
            cmd_reply = await acquire_submitted(nc, job_id, priority, submitted)
            if isinstance(cmd_reply, LeaseAccepted):
                break
            await asyncio.sleep(0.05)
        served.append(job_id)
        held.add(job_id)
        peak = max(peak, len(held))
        await asyncio.sleep(0.15)
        held.discard(job_id)
        await release(nc, cmd_reply.lease_id, holder=job_id)

    # Everyone joins the queue first (as waiting jobs would), then the race starts.
    blocker = await acquire(nc, "blocker", count=2)
    assert isinstance(blocker, LeaseAccepted)
    for job_id, priority, submitted in jobs:
        assert isinstance(await acquire_submitted(nc, job_id, priority, submitted), Rejected)
    await release(nc, blocker.lease_id)
    await asyncio.wait_for(asyncio.gather(*(holder(*j) for j in jobs)), timeout=30)
    assert sorted(served) == sorted(ranked) and peak <= 2
    assert all(ranked.index(job) - i <= 1 for i, job in enumerate(served)), served


async def acquire_submitted(nc, job_id: str, priority: int, submitted: float):
    """AcquireLease with a submission time, holder = job id."""
    cmd = AcquireLease(
        job_id=job_id, holder=job_id, count=1, priority=priority, submitted=submitted
    )
    body, rejected = await request(nc, subjects.CMD_GPUS_ACQUIRE, cmd)
    return rejected if rejected is not None else codec.lease_reply.decode(body)


async def test_a_crowd_joining_at_once_publishes_a_few_snapshots_not_one_each(
    start_broker, nc, js
) -> None:
    """60 jobs asking together: the queue is published coalesced (a handful of QueueChanged,
    not 60 of up to 60 entries each), and the last one lists all of them in order."""
    await start_broker(FakeNvml(count=1), queue_ttl=30.0)
    assert isinstance(await acquire(nc, "first"), LeaseAccepted)
    jobs = [f"j{i:02d}" for i in range(60)]
    replies = await asyncio.gather(
        *(acquire_submitted(nc, job, 0, 1000.0 + i) for i, job in enumerate(jobs))
    )
    assert all(isinstance(r, Rejected) and r.code == 409 for r in replies)

    async def all_listed():
        return [e.job_id for e in await last_queue(js)] == jobs

    await until(all_listed)
    events, _ = await EventStore(js, subjects.STREAM_GPUS, codec.gpu_events).load(
        subjects.GPU_QUEUE_EVENTS
    )
    assert 1 <= len(events) <= 10, f"{len(events)} snapshots for 60 joins"


async def test_asking_again_soon_rewrites_no_queue_key(start_broker, nc, js) -> None:
    """A waiting job that asks again within a third of the queue TTL keeps its place without
    a write: the key's revision stays (hundreds of waiting jobs cost no KV traffic each)."""
    await start_broker(FakeNvml(count=1), queue_ttl=30.0)
    assert isinstance(await acquire(nc, "a"), LeaseAccepted)
    assert isinstance(await acquire(nc, "b"), Rejected)
    kv = await js.key_value(subjects.KV_QUEUE)
    before = (await kv.get("job.b")).revision
    for _ in range(5):
        assert isinstance(await acquire(nc, "b"), Rejected)
    assert (await kv.get("job.b")).revision == before
