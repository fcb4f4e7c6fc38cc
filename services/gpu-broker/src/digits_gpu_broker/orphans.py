"""Record the end of leases on nodes whose broker is gone: their keys expire, but nobody says so.

Every live broker scans the node subjects of the GPU events stream, not only nodes it saw alive:
a broker started after a node died still finds that node's open leases there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from digits_gpu_broker import domain
from digits_gpu_broker.leases import LeaseBook
from digits_proto import subjects
from digits_proto.gpus import LeaseExpired
from digits_proto.runtime import ConcurrencyError

if TYPE_CHECKING:
    from digits_gpu_broker.broker import Broker

log = structlog.get_logger(__name__)

NODE_PREFIX = subjects.gpu_events("")  # "digits.evt.gpus."


async def node_subjects(broker: Broker) -> dict[str, int]:
    """node_id -> number of events on its subject (the queue's own subject is not a node)."""
    info = await broker.events.js.stream_info(
        subjects.STREAM_GPUS, subjects_filter=NODE_PREFIX + "*"
    )
    counts = info.state.subjects or {}
    return {
        s.removeprefix(NODE_PREFIX): n
        for s, n in counts.items()
        if s != subjects.GPU_QUEUE_EVENTS and s.startswith(NODE_PREFIX)
    }


async def sweep_dead_nodes(broker: Broker) -> list[str]:
    """For every node not announcing itself: LeaseExpired for its open leases whose keys ran out.

    Any live broker may do this. Each end is appended at the sequence the history was read at
    (a second broker's append then conflicts) and carries the lease's one end id (Nats-Msg-Id),
    so a lease is recorded as ended exactly once. A node with nothing open is skipped until its
    subject changes.
    """
    ended: list[str] = []
    live = set(broker.waitlist.nodes()) | {broker.node_id}
    for node_id, count in (await node_subjects(broker)).items():
        if node_id in live or broker.settled_nodes.get(node_id) == count:
            continue
        gone, still_open = await _expire_node(broker, node_id)
        ended.extend(gone)
        if not gone and not still_open:
            broker.settled_nodes[node_id] = count
    return ended


async def _expire_node(broker: Broker, node_id: str) -> tuple[list[str], int]:
    """Expire one silent node's leases that lost a key; (ids ended, leases left open)."""
    subject = subjects.gpu_events(node_id)
    history, seq = await broker.events.load(subject)
    open_leases = domain.open_leases(history, node_id)
    if not open_leases:
        return [], 0
    devices = sorted({d for r in open_leases.values() for d in r.devices})
    book = LeaseBook(broker.book.kv, node_id, devices, broker.book.ttl)
    snapshot = await book.snapshot()
    gone = domain.expired(open_leases, snapshot)
    ended: list[str] = []
    for record in gone:
        event = LeaseExpired(
            event_id=domain.end_event_id(record.lease_id),
            node_id=node_id,
            lease_id=record.lease_id,
            job_id=record.job_id,
            device_ids=record.devices,
        )
        try:
            seq = await broker.events.append(subject, [event], seq)
        except ConcurrencyError:
            # Another broker wrote this node's subject meanwhile: read it again next sweep.
            return ended, len(open_leases) - len(ended)
        await book.release(domain.lease_keys(snapshot, record.lease_id))
        ended.append(record.lease_id)
        broker.metrics.inc("dead_node_leases_expired")
        log.info("dead_node_lease_ended", node_id=node_id, lease_id=record.lease_id)
    return ended, len(open_leases) - len(ended)
