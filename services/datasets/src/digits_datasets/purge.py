"""Deleted datasets' events purged after the retention window, behind a `DatasetPurged` tombstone.

Which datasets are due is read from the datasets stream itself (each subject's last event and
event count), so a pass after a restart finds what an earlier one left: it is idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

import msgspec
import structlog
from nats.js import JetStreamContext

from digits_datasets import domain, upload
from digits_proto import codec, subjects, versions
from digits_proto.datasets import DatasetDeleted, DatasetEvent, DatasetPurged
from digits_proto.runtime import (
    ConcurrencyError,
    EventStore,
    StorageLimits,
    delete_prefix,
    purge_step,
    purge_subject,
    subject_heads,
)

log = structlog.get_logger(__name__)

PREFIX = subjects.dataset_events("")


async def purge_deleted(
    js: JetStreamContext,
    store: EventStore[DatasetEvent],
    retention_days: float,
    now: datetime | None = None,
) -> int:
    """One pass: tombstone and purge every deleted dataset whose window is over; how many."""
    now = now or datetime.now(UTC)
    done = 0
    heads = await subject_heads(js, subjects.STREAM_DATASETS, subjects.DATASET_EVENTS)
    for subject, head in heads.items():
        try:
            last = versions.decode_event(codec.dataset_events, head.data, head.headers)
        except msgspec.DecodeError:  # a newer event type: not ours to judge
            continue
        step = purge_step(
            deleted_at=last.occurred_at if isinstance(last, DatasetDeleted) else None,
            tombstoned=isinstance(last, DatasetPurged),
            count=head.count,
            now=now,
            retention_days=retention_days,
        )
        if step is not None:
            dataset_id = subject.removeprefix(PREFIX)
            await purge_dataset(js, store, dataset_id, tombstone=step == "tombstone")
            done += 1
    return done


async def purge_dataset(
    js: JetStreamContext, store: EventStore[DatasetEvent], dataset_id: str, tombstone: bool = True
) -> int:
    """Append the tombstone (unless there is one), then purge all before it, the dataset's
    progress and blobs; the tombstone's sequence (0 if there was nothing to do)."""
    seq = 0
    subject = subjects.dataset_events(dataset_id)
    if tombstone:
        events, last = await store.load(subject)
        state = domain.fold(events)
        deleted = next((e for e in reversed(events) if isinstance(e, DatasetDeleted)), None)
        if deleted is None or not state.deleted:
            return 0
        event = DatasetPurged(
            dataset_id=dataset_id,
            name=state.name,
            username=state.username,
            deleted_at=deleted.occurred_at,
            actor=deleted.actor,
        )
        try:
            seq = await store.append(subject, [event], last)
        except ConcurrencyError:
            return 0  # someone appended meanwhile: the next pass looks again
    await purge_subject(js, subjects.STREAM_DATASETS, subject, keep=1)
    await purge_subject(js, subjects.STREAM_PROGRESS, subjects.dataset_progress(dataset_id))
    await delete_prefix(js, subjects.BUCKET_DATASETS, upload.blob_prefix(dataset_id))
    log.info("dataset_purged", dataset_id=dataset_id)
    return seq


async def keep_purging(
    js: JetStreamContext,
    store: EventStore[DatasetEvent],
    limits: StorageLimits,
    stop: asyncio.Event,
) -> None:
    """Purge what is due now and every `purge_every` seconds until `stop`."""
    while not stop.is_set():
        try:
            await purge_deleted(js, store, limits.retention_days)
        except Exception:  # NATS away or a refused purge: the next pass retries
            log.exception("purge_failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), max(1.0, limits.purge_every))
