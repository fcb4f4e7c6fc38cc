"""A dead node's leases are recorded as expired exactly once by whichever broker is alive."""

from __future__ import annotations

import asyncio
import time

from nats.js.errors import KeyNotFoundError

from digits_proto import subjects
from digits_proto.gpus import LeaseAccepted, LeaseExpired, LeaseReleased
from digits_proto.replies import Accepted
from tests.fakes.fake_nvml import FakeNvml
from tests.gpu_broker.bus import acquire, node_events, release


async def ends(js, node_id: str) -> list:
    """LeaseReleased/LeaseExpired events on one node's subject."""
    return [
        e for e in await node_events(js, node_id) if isinstance(e, LeaseReleased | LeaseExpired)
    ]


async def wait_for_ends(js, node_id: str, count: int, timeout: float = 10.0) -> list:
    """Poll until the node's subject holds `count` lease ends."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await ends(js, node_id)
        if len(found) >= count:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"{node_id}: fewer than {count} lease ends")


async def wait_until_key_gone(js, bucket: str, key: str, timeout: float = 8.0) -> None:
    """Poll a KV key until its TTL has removed it."""
    kv = await js.key_value(bucket)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            await kv.get(key)
        except KeyNotFoundError:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{key} never expired")


async def test_two_live_brokers_record_a_killed_nodes_lease_expired_once(
    start_broker, nc, js
) -> None:
    """n1 dies holding two leases (one released first); n2 and n3 both sweep; one LeaseExpired."""
    n1 = await start_broker(FakeNvml(count=2), node_id="n1", lease_ttl=1.0)
    await start_broker(FakeNvml(count=1), node_id="n2", lease_ttl=1.0)
    await start_broker(FakeNvml(count=1), node_id="n3", lease_ttl=1.0)
    kept = await acquire(nc, "orphan", node="n1")
    done = await acquire(nc, "finished", node="n1")
    assert isinstance(kept, LeaseAccepted) and isinstance(done, LeaseAccepted)
    # A trainer releases on its node's own subject (the shared one may reach n2 or n3).
    assert isinstance(await release(nc, done.lease_id, node="n1"), Accepted)
    n1.stop.set()
    (_, expired) = await wait_for_ends(js, "n1", 2)
    assert isinstance(expired, LeaseExpired) and expired.lease_id == kept.lease_id
    assert expired.job_id == "orphan" and expired.node_id == "n1"
    await asyncio.sleep(1.5)  # several more sweeps by both live brokers
    assert [type(e) for e in await ends(js, "n1")] == [LeaseReleased, LeaseExpired]


async def test_broker_started_after_the_node_died_records_its_stale_lease(
    start_broker, nc, js
) -> None:
    """A broker that never saw n1 alive finds n1's open lease in the stream and expires it."""
    n1 = await start_broker(FakeNvml(count=1), node_id="n1", lease_ttl=1.0)
    lease = await acquire(nc, "orphan", node="n1")
    assert isinstance(lease, LeaseAccepted)
    n1.stop.set()
    await asyncio.sleep(0.1)
    # n1's announcement and lease keys both run out before any other broker exists.
    await wait_until_key_gone(js, subjects.KV_QUEUE, "node.n1")
    await wait_until_key_gone(js, subjects.KV_LEASES, "n1.gpu0")
    assert await ends(js, "n1") == []
    await start_broker(FakeNvml(count=1), node_id="n2", lease_ttl=1.0)
    (expired,) = await wait_for_ends(js, "n1", 1, timeout=5.0)
    assert isinstance(expired, LeaseExpired) and expired.lease_id == lease.lease_id
    await asyncio.sleep(1.0)
    assert len(await ends(js, "n1")) == 1


async def test_a_live_nodes_leases_are_left_to_its_own_broker(start_broker, nc, js) -> None:
    """Another broker never ends a lease of a node that still announces itself."""
    n1 = await start_broker(FakeNvml(count=1), node_id="n1", lease_ttl=1.0)
    n2 = await start_broker(FakeNvml(count=1), node_id="n2", lease_ttl=1.0)
    lease = await acquire(nc, "job", node="n1")
    assert isinstance(lease, LeaseAccepted)
    (expired,) = await wait_for_ends(js, "n1", 1)  # the holder never renews
    assert isinstance(expired, LeaseExpired) and expired.lease_id == lease.lease_id
    await asyncio.sleep(1.0)
    assert len(await ends(js, "n1")) == 1
    assert n1.metrics.value("leases_ended_seen") == 1
    assert n2.metrics.value("dead_node_leases_expired") is None
