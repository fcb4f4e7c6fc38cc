"""Record the end of leases on a node whose broker died: its keys expire, but nobody says so."""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from digits_gpu_broker import domain
from digits_gpu_broker.leases import LeaseBook
from digits_proto import subjects
from digits_proto.gpus import LeaseExpired

if TYPE_CHECKING:
    from digits_gpu_broker.handlers import Broker

log = structlog.get_logger(__name__)


async def sweep_dead_nodes(broker: Broker) -> list[str]:
    """For every node gone silent: LeaseExpired for its open leases whose keys ran out.

    Every live broker may do this; the events' fixed ids make the duplicates vanish. A node is
    forgotten once none of its leases is open.
    """
    ended: list[str] = []
    for node_id in broker.waitlist.silent_nodes():
        if node_id == broker.node_id:
            continue
        subject = subjects.gpu_events(node_id)
        history, _ = await broker.events.load(subject)
        open_leases = domain.open_leases(history, node_id)
        devices = sorted({d for r in open_leases.values() for d in r.devices})
        book = LeaseBook(broker.book.kv, node_id, devices, broker.book.ttl)
        snapshot = await book.snapshot()
        gone = domain.expired(open_leases, snapshot)
        for record in gone:
            event = LeaseExpired(
                event_id=domain.end_event_id(record.lease_id),
                node_id=node_id,
                lease_id=record.lease_id,
                job_id=record.job_id,
                device_ids=record.devices,
            )
            await broker.events.append(subject, [event], None)
            await book.release(domain.lease_keys(snapshot, record.lease_id))
            ended.append(record.lease_id)
            log.info("dead_node_lease_ended", node_id=node_id, lease_id=record.lease_id)
        if len(gone) == len(open_leases):
            broker.waitlist.forget_node(node_id)
    return ended
