"""Purging deleted jobs after the retention window, behind a tombstone.

The owning service finds them from the stream itself (the last event of each aggregate subject
and how many events each holds), so the purge survives restarts and is idempotent: first the
tombstone is appended (it says who deleted the job and when), then everything before it on the
subject is purged. A crash in between leaves a tombstone with history still behind it, which
the next pass purges.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal, NamedTuple

from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy

from digits_proto.runtime._limits import DAY

Step = Literal["tombstone", "purge"]


class SubjectHead(NamedTuple):
    """A subject's event count and its last event, with the headers that say how to decode it
    (its schema version: an older one is upcast by `versions.decode_event`)."""

    count: int
    seq: int
    data: bytes
    headers: dict[str, str]


def purge_step(
    *,
    deleted_at: datetime | None,
    tombstoned: bool,
    count: int,
    now: datetime,
    retention_days: float,
) -> Step | None:
    """What a job's subject needs next.

    `deleted_at`: when it was deleted, if its last event is the deletion; `tombstoned`: its last
    event is the tombstone; `count`: events on its subject. A deletion older than the window
    gets its tombstone; a tombstone with history still behind it gets the purge.
    """
    if tombstoned:
        return "purge" if count > 1 else None
    if deleted_at is None:
        return None
    if now - deleted_at >= timedelta(seconds=retention_days * DAY):
        return "tombstone"
    return None


async def subject_heads(
    js: JetStreamContext, stream: str, filter_subject: str, timeout: float = 10.0
) -> dict[str, SubjectHead]:
    """subject → its `SubjectHead` (events on it, its last event's sequence, data and headers):
    one pass.

    Counts come from the stream's subject state, last events from an ordered consumer that
    delivers only the last message of each subject.
    """
    info = await js.stream_info(stream, subjects_filter=filter_subject)
    counts = info.state.subjects or {}
    if not counts:
        return {}
    heads: dict[str, SubjectHead] = {}
    sub = await js.subscribe(
        filter_subject,
        stream=stream,
        ordered_consumer=True,
        deliver_policy=DeliverPolicy.LAST_PER_SUBJECT,
    )
    try:
        while True:
            msg = await sub.next_msg(timeout=timeout)
            meta = msg.metadata
            heads[msg.subject] = SubjectHead(
                counts.get(msg.subject, 1), meta.sequence.stream, msg.data, msg.headers or {}
            )
            if meta.num_pending == 0:
                return heads
    finally:
        await sub.unsubscribe()


async def purge_subject(js: JetStreamContext, stream: str, subject: str, keep: int = 0) -> None:
    """Purge a subject of a stream, keeping its last `keep` messages (0: all of them go)."""
    await js.purge_stream(stream, subject=subject, keep=keep or None)
