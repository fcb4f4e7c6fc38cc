"""Notice leases whose holder stopped renewing (their keys' TTL ran out) and record LeaseExpired."""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from digits_gpu_broker import domain, orphans, queueing
from digits_gpu_broker.handlers import Broker
from digits_proto.gpus import LeaseExpired

log = structlog.get_logger(__name__)


def node_ttl(ttl: float) -> float:
    """How long a node counts as alive after its broker last swept."""
    return max(3.0, ttl)


def sweep_interval(ttl: float) -> float:
    """Often enough to notice an expiry within a fraction of the TTL, at most once a second."""
    return max(0.2, min(1.0, ttl / 4))


async def seed(broker: Broker) -> None:
    """Track the leases the node's history says are open (they may have expired while we were down)."""
    history, _ = await broker.events.load(broker.subject)
    broker.tracked.update(domain.open_leases(history, broker.node_id))


async def sweep_once(broker: Broker) -> list[str]:
    """Expire tracked leases that lost a key; start tracking every complete lease; ids expired."""
    # Only leases tracked before the snapshot was read: one granted meanwhile may be missing from it.
    candidates = dict(broker.tracked)
    snapshot = await broker.book.snapshot()
    gone = domain.expired(candidates, snapshot)
    for record in gone:
        # Same event id as LeaseReleased: if the holder released it, this append is a duplicate.
        event = LeaseExpired(
            event_id=domain.end_event_id(record.lease_id),
            node_id=broker.node_id,
            lease_id=record.lease_id,
            job_id=record.job_id,
            device_ids=record.devices,
        )
        await broker.events.append(broker.subject, [event], None)
        # Devices of the lease that have not expired yet go now: all of a lease or none of it.
        await broker.book.release(domain.lease_keys(snapshot, record.lease_id))
        broker.tracked.pop(record.lease_id, None)
        broker.metrics.inc("leases_ended_seen")
        log.info("lease_gone", lease_id=record.lease_id, job_id=record.job_id)
    broker.tracked.update(domain.complete_leases(snapshot))
    broker.metrics.set("devices_leased", float(len(snapshot)))
    await broker.waitlist.announce_node(broker.node_id, broker.devices)
    await orphans.sweep_dead_nodes(broker)
    # Waiting jobs whose holder stopped asking have expired: the published queue follows
    # (a sweep that changed nothing publishes nothing: publish compares first).
    queueing.changed(broker)
    return [r.lease_id for r in gone]


async def sweep_forever(broker: Broker, interval: float, stop: asyncio.Event | None = None) -> None:
    """Run `sweep_once` every `interval` seconds until `stop` is set."""
    stop = stop or asyncio.Event()
    while not stop.is_set():
        try:
            await sweep_once(broker)
        except Exception:  # e.g. NATS restarting: try again next round
            log.exception("sweep_failed", node_id=broker.node_id)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
