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


class Subscription:
    """One SSE client's queue; `None` in it means: stop (shutdown, or the client fell behind)."""

    def __init__(self, job_id: str | None, kinds: frozenset[str], maxsize: int):
        self.job_id = job_id
        self.kinds = kinds
        self.queue: asyncio.Queue[LiveEvent | None] = asyncio.Queue(maxsize)
        self.dropped = False

    def offer(self, event: LiveEvent) -> None:
        if self.dropped or event.kind not in self.kinds:
            return
        if self.job_id is not None and event.job_id != self.job_id:
            return
        try:
            self.queue.put_nowait(event)
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
        if not events:
            return
        for sub in list(self.subscriptions):
            for event in events:
                sub.offer(event)
            if sub.dropped:  # ended: forget it even if its response never started
                self.subscriptions.discard(sub)

    def close(self) -> None:
        """Shutdown: every open stream ends, so the server need not wait for them."""
        self.closed = True
        for sub in list(self.subscriptions):
            sub.stop()
        log.info("live_hub_closed", streams=len(self.subscriptions))
