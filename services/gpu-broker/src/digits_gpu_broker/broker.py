"""What the handlers and loops of one broker instance share (its own module, so the loops
that take a Broker never import the handlers that import them)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from digits_gpu_broker import domain
from digits_gpu_broker.domain import LeaseRecord
from digits_gpu_broker.leases import LeaseBook
from digits_gpu_broker.waitlist import Waitlist
from digits_proto import subjects
from digits_proto.gpus import Device, GpuEvent, LeaseAccepted, QueueEntry
from digits_proto.runtime import EventStore, Metrics

# How many ended jobs a broker remembers (an ask for one of them is turned away).
ENDED_KEPT = 10_000


@dataclass
class Broker:
    """What the handlers and loops of one broker instance share."""

    node_id: str
    devices: list[Device]
    book: LeaseBook
    events: EventStore[GpuEvent]
    cpu_count: int
    waitlist: Waitlist
    user_cap: int = 0  # concurrent jobs per user (0 = no cap)
    metrics: Metrics = field(default_factory=lambda: Metrics("gpu_broker"))
    # Leases seen complete; the expiry sweep watches them (a cache, never a reason to grant).
    tracked: dict[str, LeaseRecord] = field(default_factory=dict)
    # Other nodes found with no open lease, by their event count then (skipped until it changes).
    settled_nodes: dict[str, int] = field(default_factory=dict)
    # One queue publication at a time, so two changes never race to the same snapshot.
    publishing: asyncio.Lock = field(default_factory=asyncio.Lock)
    # Set when the queue may have changed; queueing.publish_forever publishes it.
    queue_dirty: asyncio.Event = field(default_factory=asyncio.Event)
    # The entries of the last QueueChanged this broker saw (None: not read yet).
    published: list[QueueEntry] | None = None
    # Jobs seen aborted or deleted (newest last, bounded): a trainer's ask already on its way
    # when the job ended must not put it back in the queue until the key's TTL runs out.
    ended: dict[str, None] = field(default_factory=dict)

    def job_ended(self, job_id: str) -> None:
        """Remember that `job_id` will never run (the oldest memory goes past ENDED_KEPT)."""
        self.ended[job_id] = None
        while len(self.ended) > ENDED_KEPT:
            del self.ended[next(iter(self.ended))]

    @property
    def subject(self) -> str:
        """This node's event subject."""
        return subjects.gpu_events(self.node_id)

    def accepted(self, record: LeaseRecord) -> LeaseAccepted:
        """The reply describing a live lease."""
        by_id = {d.device_id: d for d in self.devices}
        return LeaseAccepted(
            lease_id=record.lease_id,
            node_id=self.node_id,
            devices=[by_id[d] for d in record.devices if d in by_id],
            threads=domain.lease_threads(self.cpu_count, len(self.devices), len(record.devices)),
            ttl_seconds=float(self.book.ttl),
        )
