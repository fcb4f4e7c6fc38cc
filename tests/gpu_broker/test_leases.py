"""Lease commands against a real nats-server and in-process brokers on fake GPUs."""

from __future__ import annotations

import asyncio

import msgspec

from digits_gpu_broker.domain import LeaseRecord
from digits_gpu_broker.leases import LeaseBook
from digits_gpu_broker.telemetry import available_cpus
from digits_proto import codec, subjects
from digits_proto.gpus import (
    DevicesDiscovered,
    LeaseAccepted,
    LeaseGranted,
    LeaseReleased,
    RenewLease,
)
from digits_proto.replies import Accepted, Rejected
from digits_proto.runtime import request
from tests.fakes.fake_nvml import FakeNvml
from tests.gpu_broker.bus import acquire, node_events, release, renew

KEYS = ("n1.gpu0", "n1.gpu1")


async def test_acquire_renew_release_round_trip(start_broker, nc) -> None:
    """A lease is granted, renewed, released, and then unknown to renew and release."""
    await start_broker(FakeNvml(count=2))
    lease = await acquire(nc, "job1")
    assert isinstance(lease, LeaseAccepted)
    assert [d.device_id for d in lease.devices] == ["gpu0"] and lease.devices[0].kind == "gpu"
    assert lease.node_id == "n1" and lease.ttl_seconds == 2.0
    assert lease.threads == max(1, available_cpus() // 2)
    renewed = await renew(nc, lease.lease_id)
    assert isinstance(renewed, LeaseAccepted) and renewed.lease_id == lease.lease_id
    released = await release(nc, lease.lease_id)
    assert isinstance(released, Accepted) and released.stream == subjects.STREAM_GPUS
    assert released.seq > 0
    for late in (await renew(nc, lease.lease_id), await release(nc, lease.lease_id)):
        assert isinstance(late, Rejected) and late.code == 404 and late.field == "lease_id"


async def test_explicit_indexes_are_all_or_nothing(start_broker, nc) -> None:
    """A request naming a busy index gets nothing and keeps the free one it named for itself."""
    await start_broker(FakeNvml(count=2))
    one = await acquire(nc, "a", indexes=[1])
    assert isinstance(one, LeaseAccepted) and [d.index for d in one.devices] == [1]
    both = await acquire(nc, "b", indexes=[0, 1])
    assert isinstance(both, Rejected) and both.code == 409 and both.message == "devices busy"
    zero = await acquire(nc, "c", indexes=[0])
    assert isinstance(zero, Rejected) and zero.message == "waiting: behind b"
    assert isinstance(await release(nc, one.lease_id), Accepted)
    both = await acquire(nc, "b", indexes=[0, 1])
    assert isinstance(both, LeaseAccepted) and [d.index for d in both.devices] == [0, 1]


async def test_impossible_requests_are_400_naming_the_digits_field(start_broker, nc) -> None:
    """An unknown index names `select_gpus`; too large a count names `select_gpu_count`."""
    await start_broker(FakeNvml(count=2))
    unknown = await acquire(nc, "a", indexes=[2])
    assert isinstance(unknown, Rejected) and (unknown.code, unknown.field) == (400, "select_gpus")
    many = await acquire(nc, "a", count=3)
    assert isinstance(many, Rejected) and (many.code, many.field) == (400, "select_gpu_count")
    anonymous = await acquire(nc, "a", holder="")
    assert isinstance(anonymous, Rejected) and (anonymous.code, anonymous.field) == (400, "holder")


async def test_retried_acquire_returns_the_existing_lease(start_broker, nc) -> None:
    """The same job and holder asking again get the same lease, not a second device."""
    await start_broker(FakeNvml(count=2))
    first, again = await acquire(nc, "job"), await acquire(nc, "job")
    assert isinstance(first, LeaseAccepted) and isinstance(again, LeaseAccepted)
    assert again.lease_id == first.lease_id and again.devices == first.devices
    other = await acquire(nc, "job", holder="someone-else")
    assert isinstance(other, LeaseAccepted) and other.lease_id != first.lease_id


async def test_only_the_holder_renews_or_releases(start_broker, nc) -> None:
    """Another holder's renew or release is a 409 and leaves the lease alive."""
    await start_broker(FakeNvml(count=1))
    lease = await acquire(nc, "job", holder="me")
    assert isinstance(lease, LeaseAccepted)
    for reply in (await renew(nc, lease.lease_id, "you"), await release(nc, lease.lease_id, "you")):
        assert isinstance(reply, Rejected) and reply.code == 409 and reply.field == "holder"
    assert isinstance(await renew(nc, lease.lease_id, "me"), LeaseAccepted)


async def test_command_on_the_wrong_endpoint_is_400(start_broker, nc) -> None:
    """A RenewLease sent to the acquire endpoint is refused, not a 500."""
    await start_broker(FakeNvml(count=1))
    _, rejected = await request(nc, subjects.CMD_GPUS_ACQUIRE, RenewLease(lease_id="x", holder="h"))
    assert rejected is not None and rejected.code == 400


async def hammer(nc, n: int = 30) -> list[LeaseAccepted]:
    """`n` concurrent single-device acquires; the granted ones (the rest must be 409)."""
    replies = await asyncio.gather(*(acquire(nc, f"job{i}") for i in range(n)))
    refused = [r for r in replies if isinstance(r, Rejected)]
    assert all(r.code == 409 for r in refused), refused
    return [r for r in replies if isinstance(r, LeaseAccepted)]


async def test_concurrent_acquires_never_grant_a_device_twice(start_broker, nc) -> None:
    """30 concurrent acquires on a 2-GPU node: exactly 2 leases, on different devices."""
    await start_broker(FakeNvml(count=2))
    granted = await hammer(nc)
    assert len(granted) == 2
    assert sorted(d.device_id for g in granted for d in g.devices) == ["gpu0", "gpu1"]


async def test_racing_kv_claims_are_all_or_nothing(js) -> None:
    """Concurrent overlapping 2-device claims straight on the KV: winners disjoint, losers leave
    no key behind."""
    kv = await js.key_value(subjects.KV_LEASES)
    book = LeaseBook(kv, "n1", ["cpu0", "cpu1", "cpu2"], ttl=5)
    pairs = [("cpu0", "cpu1"), ("cpu1", "cpu2"), ("cpu2", "cpu0")] * 10
    records = [
        LeaseRecord(lease_id=f"l{i}", job_id=f"j{i}", holder="h", node_id="n1", devices=list(p))
        for i, p in enumerate(pairs)
    ]
    results = await asyncio.gather(*map(book.claim, records))
    won = [r for r, ok in zip(records, results, strict=True) if ok]
    assert len(won) <= 1  # every pair overlaps every other pair
    snapshot = await book.snapshot()
    held = {d: h.record.lease_id for d, h in snapshot.items() if h.record is not None}
    assert held == {d: w.lease_id for w in won for d in w.devices}


async def test_two_brokers_of_one_node_never_double_grant(start_broker, nc, js) -> None:
    """Two broker instances with the same node id race through one KV: still 2 leases total."""
    await start_broker(FakeNvml(count=2))
    await start_broker(FakeNvml(count=2))
    granted = await hammer(nc)
    assert len(granted) == 2
    assert sorted(d.device_id for g in granted for d in g.devices) == ["gpu0", "gpu1"]
    kv = await js.key_value(subjects.KV_LEASES)
    held = [msgspec.json.decode((await kv.get(k)).value, type=LeaseRecord) for k in KEYS]
    assert {r.lease_id for r in held} == {g.lease_id for g in granted}
    granted_events = [e for e in await node_events(js) if isinstance(e, LeaseGranted)]
    assert sorted(e.lease_id for e in granted_events) == sorted(g.lease_id for g in granted)


async def test_events_tell_the_story_in_the_gpus_stream(start_broker, nc, js) -> None:
    """DevicesDiscovered at start, then LeaseGranted and LeaseReleased, in DIGITS_GPUS."""
    await start_broker(FakeNvml(count=2))
    lease = await acquire(nc, "job", count=2)
    assert isinstance(lease, LeaseAccepted)
    assert isinstance(await release(nc, lease.lease_id), Accepted)
    events = await node_events(js)
    assert [type(e) for e in events] == [DevicesDiscovered, LeaseGranted, LeaseReleased]
    discovered, granted, released = events
    assert [d.uuid for d in discovered.devices] == ["GPU-fake-0000", "GPU-fake-0001"]
    assert granted.device_ids == ["gpu0", "gpu1"] and granted.job_id == "job"
    assert released.lease_id == granted.lease_id == lease.lease_id
    # The node's own subject holds these three and nothing else (the queue's subject may also
    # hold a QueueChanged, published if the job was seen waiting for a moment before its grant).
    info = await js.stream_info(subjects.STREAM_GPUS, subjects_filter=subjects.gpu_events("n1"))
    assert info.state.subjects == {subjects.gpu_events("n1"): 3}
    assert (
        codec.gpu_events.decode(
            (await js.get_last_msg(subjects.STREAM_GPUS, subjects.gpu_events("n1"))).data
        )
        == released
    )
