"""Live delivery: the projector hands every applied change to in-process subscribers (SSE)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import msgspec
import structlog

log = structlog.get_logger(__name__)


class LiveEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One change the projector committed: `kind` is the SSE event type, `data` its payload."""

    stream: str
    seq: int
    job_id: str
    kind: str  # status | progress | metric | snapshot | deleted
    data: dict[str, Any]


# A change as a subscriber receives it: the event and its data already encoded as JSON (once
# per change, however many clients receive it).
Delivery = tuple[LiveEvent, bytes]


def encode(event: LiveEvent) -> Delivery:
    """The event with its data encoded, ready for any number of subscribers."""
    return event, msgspec.json.encode(event.data)


class Subscription:
    """One SSE client's queue; `None` in it means: stop (shutdown, or the client fell behind)."""

    def __init__(self, job_id: str | None, kinds: frozenset[str], maxsize: int):
        self.job_id = job_id
        self.kinds = kinds
        self.queue: asyncio.Queue[Delivery | None] = asyncio.Queue(maxsize)
        self.dropped = False

    def wants(self, event: LiveEvent) -> bool:
        """Whether this client receives the change (its kinds, its job)."""
        if self.dropped or event.kind not in self.kinds:
            return False
        return self.job_id is None or event.job_id == self.job_id

    def offer(self, event: LiveEvent, delivery: Delivery | None = None) -> None:
        """Queue the change if wanted (`delivery`: it already encoded, shared by many)."""
        if not self.wants(event):
            return
        try:
            self.queue.put_nowait(delivery or encode(event))
        except asyncio.QueueFull:
            # A slow client is cut off; its browser reconnects with Last-Event-ID and resumes.
            self.stop()

    def stop(self) -> None:
        """End the stream. Pending events are dropped whole (never one from the middle), so the
        client's last cursor stays exact and its reconnect replays the rest from DuckDB."""
        if self.dropped:
            return
        self.dropped = True
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(None)


class Hub:
    """Fan-out of committed changes to subscribers, called synchronously right after commit."""

    def __init__(self, maxsize: int = 10_000):
        self.maxsize = maxsize
        self.subscriptions: set[Subscription] = set()
        self.closed = False

    def subscribe(self, job_id: str | None, kinds: Iterable[str]) -> Subscription:
        """Start receiving changes (of one job, or of all when `job_id` is None)."""
        sub = Subscription(job_id, frozenset(kinds), self.maxsize)
        if self.closed:
            sub.stop()
        else:
            self.subscriptions.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Stop receiving changes."""
        self.subscriptions.discard(sub)

    def publish(self, events: Iterable[LiveEvent]) -> None:
        """Offer committed changes to every subscriber (never blocks)."""
        events = list(events)
        if not events or not self.subscriptions:
            return
        encoded: dict[int, Delivery] = {}  # each event encoded once, when first wanted
        for sub in list(self.subscriptions):
            for i, event in enumerate(events):
                if sub.wants(event):
                    if i not in encoded:
                        encoded[i] = encode(event)
                    sub.offer(event, encoded[i])
            if sub.dropped:  # ended: forget it even if its response never started
                self.subscriptions.discard(sub)

    def close(self) -> None:
        """Shutdown: every open stream ends, so the server need not wait for them."""
        self.closed = True
        for sub in list(self.subscriptions):
            sub.stop()
        log.info("live_hub_closed", streams=len(self.subscriptions))
