"""Read the served event streams straight from JetStream for `/api/v1/events`.

Each request reads through short-lived consumers of its own (one per stream, starting after the
caller's cursor, no acks, removed when done or after a minute idle), never through the read
model: a consumer gets every event as it was stored, in stream order, with its sequence. The
cursor is the last sequence seen per stream (`DIGITS_MODELS:12,DIGITS_METRICS:340`), so a page's
`next` or an SSE message's `id` resumes without gap or duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
from collections.abc import AsyncIterator, Mapping
from datetime import datetime

import msgspec
import structlog
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.client import JetStreamContext as _JS

from digits_proto import headers, versions

log = structlog.get_logger(__name__)

# A consumer left behind (a client gone mid-request, a gateway killed) is removed by the server.
INACTIVE_SECONDS = 60.0
FETCH_BATCH = 256
# Events read ahead for one SSE client (its readers wait while it is full).
FOLLOW_QUEUE = 1024

Cursor = dict[str, int]


class Envelope(msgspec.Struct, kw_only=True):
    """One stored event as outside consumers get it; `payload` is the event's JSON as stored
    (its `version` says which schema in proto/schema/ describes it)."""

    type: str
    version: int
    subject: str
    stream: str
    sequence: int
    time: datetime
    correlation_id: str | None
    causation_id: str | None
    payload: msgspec.Raw


class _Tagged(msgspec.Struct):
    type: str = ""


_tag = msgspec.json.Decoder(_Tagged)


def envelope(msg: Msg) -> Envelope | None:
    """The envelope of a JetStream message; None for one that is not a JSON object."""
    hdrs: Mapping[str, str] = msg.headers or {}
    data = msg.data
    meta = msg.metadata
    try:
        tag = _tag.decode(data).type
    except (msgspec.DecodeError, msgspec.ValidationError):
        log.warning("feed_skipped_undecodable", stream=meta.stream, seq=meta.sequence.stream)
        return None
    schema_tag, version = versions.parse_schema(hdrs.get(headers.SCHEMA))
    return Envelope(
        type=tag or schema_tag,
        version=version,
        subject=msg.subject,
        stream=meta.stream,
        sequence=meta.sequence.stream,
        time=meta.timestamp,
        correlation_id=hdrs.get(headers.CORRELATION_ID),
        causation_id=hdrs.get(headers.CAUSATION_ID),
        payload=msgspec.Raw(data),
    )


def encode_cursor(cursor: Cursor) -> str:
    """`STREAM:seq,...` in a stable order."""
    return ",".join(f"{stream}:{seq}" for stream, seq in sorted(cursor.items()))


class _Reader:
    """One consumer on one stream's `subject` (the whole stream's, or one job's), from just
    after `after`."""

    def __init__(self, js: JetStreamContext, stream: str, subject: str, after: int):
        self.js, self.stream, self.subject, self.after = js, stream, subject, after
        self.sub: _JS.PullSubscription | None = None
        self.name = ""
        self.pending = 0

    async def open(self) -> None:
        config = ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=self.after + 1,
            ack_policy=AckPolicy.NONE,
            inactive_threshold=INACTIVE_SECONDS,
            mem_storage=True,
            filter_subject=self.subject,
        )
        self.sub = await self.js.pull_subscribe(self.subject, stream=self.stream, config=config)
        info = await self.sub.consumer_info()
        self.name, self.pending = info.name, info.num_pending or 0

    async def fetch(self, most: int, timeout: float) -> list[Envelope]:
        assert self.sub is not None
        msgs = await self.sub.fetch(most, timeout=timeout)
        return [e for m in msgs if (e := envelope(m)) is not None]

    async def close(self) -> None:
        if self.sub is None:
            return
        with contextlib.suppress(NatsError, TimeoutError):
            await self.sub.unsubscribe()
            await self.js.delete_consumer(self.stream, self.name)


async def _read_page(
    js: JetStreamContext, stream: str, subject: str, after: int, limit: int
) -> list[Envelope]:
    """Up to `limit` events of one stream after `after`: what is stored now, never waiting."""
    reader = _Reader(js, stream, subject, after)
    try:
        await reader.open()
        wanted = min(limit, reader.pending)
        found: list[Envelope] = []
        while len(found) < wanted:
            batch = await reader.fetch(min(FETCH_BATCH, wanted - len(found)), timeout=5)
            found += batch
            if not batch:
                break
        return found
    finally:
        await reader.close()


async def page(
    js: JetStreamContext, filters: Mapping[str, str], cursor: Cursor, limit: int
) -> tuple[list[Envelope], Cursor]:
    """The next `limit` events of these streams after `cursor`, oldest first, and the cursor
    after the last of them (unchanged streams keep their position)."""
    per_stream = await asyncio.gather(
        *(_read_page(js, st, subject, cursor[st], limit) for st, subject in filters.items())
    )
    # Each list is in stream order; merged by storage time, ties by stream name.
    events = list(heapq.merge(*per_stream, key=lambda e: (e.time, e.stream)))[:limit]
    after = dict(cursor)
    for event in events:
        after[event.stream] = event.sequence
    return events, after


async def follow(
    js: JetStreamContext, filters: Mapping[str, str], cursor: Cursor, idle: float
) -> AsyncIterator[Envelope | None]:
    """Every event after `cursor`, stored ones first, then live; None after `idle` seconds
    without one (the caller's keepalive). Ends if a reader fails (the client resumes)."""
    queue: asyncio.Queue[Envelope | BaseException] = asyncio.Queue(FOLLOW_QUEUE)
    readers = [_Reader(js, st, subject, cursor[st]) for st, subject in filters.items()]

    async def pump(reader: _Reader) -> None:
        try:
            await reader.open()
            while True:
                try:
                    batch = await reader.fetch(FETCH_BATCH, timeout=idle)
                except TimeoutError:
                    continue
                for event in batch:
                    await queue.put(event)  # a slow client slows its own readers only
        except (NatsError, TimeoutError) as e:
            await queue.put(e)

    tasks = [asyncio.create_task(pump(r), name=f"feed-{r.stream}") for r in readers]
    try:
        while True:
            try:
                async with asyncio.timeout(idle):
                    item = await queue.get()
            except TimeoutError:
                yield None
                continue
            if isinstance(item, BaseException):
                log.warning("feed_follow_ended", error=str(item) or type(item).__name__)
                return
            yield item
    finally:
        # A client gone mid-stream cancels this generator inside the server's cancel scope,
        # which would cancel any await here too: the readers are closed by a task of their own.
        cleanup = asyncio.create_task(_close_all(tasks, readers), name="feed-close")
        _closing.add(cleanup)
        cleanup.add_done_callback(_closing.discard)


_closing: set[asyncio.Task[None]] = set()  # referenced until done (the loop keeps weak refs)


async def _close_all(tasks: list[asyncio.Task[None]], readers: list[_Reader]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.gather(*(r.close() for r in readers), return_exceptions=True)
