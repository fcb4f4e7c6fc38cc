"""Leases whose holder stops renewing expire after the TTL, once, and free their devices."""

from __future__ import annotations

import asyncio
import time

from digits_proto.gpus import LeaseAccepted, LeaseExpired, LeaseGranted, LeaseReleased
from digits_proto.replies import Rejected
from tests.fakes.fake_nvml import FakeNvml
from tests.gpu_broker.bus import acquire, node_events, release, renew


async def wait_for_event(js, kind: type, lease_id: str, timeout: float = 6.0):
    """Poll the node's events until one of `kind` for `lease_id` appears."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for e in await node_events(js):
            if isinstance(e, kind) and e.lease_id == lease_id:
                return e
        await asyncio.sleep(0.1)
    raise AssertionError(f"no {kind.__name__} for {lease_id}")


async def test_unrenewed_lease_expires_and_the_device_is_free_again(start_broker, nc, js) -> None:
    """After the TTL without renewals LeaseExpired is recorded and the device is granted anew."""
    await start_broker(FakeNvml(count=1), lease_ttl=1.0)
    lease = await acquire(nc, "sleepy", count=1)
    assert isinstance(lease, LeaseAccepted) and lease.ttl_seconds == 1.0
    busy = await acquire(nc, "other")
    assert isinstance(busy, Rejected) and busy.code == 409
    started = time.monotonic()
    expired = await wait_for_event(js, LeaseExpired, lease.lease_id)
    assert time.monotonic() - started >= 0.5
    assert expired.device_ids == ["gpu0"] and expired.job_id == "sleepy"
    renewed = await renew(nc, lease.lease_id)
    assert isinstance(renewed, Rejected) and renewed.code == 404
    again = await acquire(nc, "other")
    assert isinstance(again, LeaseAccepted) and again.devices[0].device_id == "gpu0"


async def test_renewing_holder_keeps_its_lease_past_the_ttl(start_broker, nc, js) -> None:
    """Renewing every third of the TTL keeps the devices well beyond one TTL."""
    await start_broker(FakeNvml(count=2), lease_ttl=1.0)
    lease = await acquire(nc, "busy", count=2)
    assert isinstance(lease, LeaseAccepted)
    for _ in range(8):  # ~2.7 s, nearly three TTLs
        await asyncio.sleep(lease.ttl_seconds / 3)
        assert isinstance(await renew(nc, lease.lease_id), LeaseAccepted)
    assert not [e for e in await node_events(js) if isinstance(e, LeaseExpired)]
    assert isinstance(await acquire(nc, "other"), Rejected)


async def test_released_lease_never_also_expires(start_broker, nc, js) -> None:
    """A release is the lease's one end: the sweep noticing the keys gone adds nothing."""
    await start_broker(FakeNvml(count=1), lease_ttl=1.0)
    lease = await acquire(nc, "job")
    assert isinstance(lease, LeaseAccepted)
    await release(nc, lease.lease_id)
    await asyncio.sleep(1.5)  # several sweeps and more than a TTL
    ends = [e for e in await node_events(js) if isinstance(e, LeaseReleased | LeaseExpired)]
    assert [type(e) for e in ends] == [LeaseReleased]


async def test_lease_that_expired_while_no_broker_ran_is_recorded_on_restart(
    start_broker, nc, js
) -> None:
    """A restarted broker folds the node's history and records leases that expired meanwhile."""
    first = await start_broker(FakeNvml(count=1), lease_ttl=1.0)
    lease = await acquire(nc, "job")
    assert isinstance(lease, LeaseAccepted)
    # Stop the broker before its sweep can notice anything, and let the TTL run out.
    first.stop.set()
    await asyncio.sleep(0.1)
    assert not [e for e in await node_events(js) if isinstance(e, LeaseExpired)]
    await asyncio.sleep(1.5)
    await start_broker(FakeNvml(count=1), lease_ttl=1.0)
    expired = await wait_for_event(js, LeaseExpired, lease.lease_id, timeout=3)
    assert expired.device_ids == ["gpu0"]
    assert sum(isinstance(e, LeaseGranted) for e in await node_events(js)) == 1
