"""Deleted jobs' events purged after the retention window, behind a `ModelPurged` tombstone.

Which jobs are due is read from the models stream itself (each subject's last event and event
count), so a pass after a restart finds what an earlier one left: it is idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

import msgspec
import structlog

from digits_proto import codec, subjects, versions
from digits_proto.models import ModelDeleted, ModelPurged
from digits_proto.runtime import (
    ConcurrencyError,
    StorageLimits,
    purge_step,
    purge_subject,
    subject_heads,
)
from digits_trainer.domain import fold_model
from digits_trainer.store import Store

log = structlog.get_logger(__name__)

PREFIX = subjects.model_events("")


async def purge_deleted(store: Store, retention_days: float, now: datetime | None = None) -> int:
    """One pass: tombstone and purge every deleted job whose window is over; how many."""
    now = now or datetime.now(UTC)
    done = 0
    heads = await subject_heads(store.js, subjects.STREAM_MODELS, subjects.MODEL_EVENTS)
    for subject, head in heads.items():
        try:
            last = versions.decode_event(codec.model_events, head.data, head.headers)
        except msgspec.DecodeError:  # a newer event type: not ours to judge
            continue
        step = purge_step(
            deleted_at=last.occurred_at if isinstance(last, ModelDeleted) else None,
            tombstoned=isinstance(last, ModelPurged),
            count=head.count,
            now=now,
            retention_days=retention_days,
        )
        if step is not None:
            await purge_model(store, subject.removeprefix(PREFIX), tombstone=step == "tombstone")
            done += 1
    return done


async def purge_model(store: Store, model_id: str, tombstone: bool = True) -> int:
    """Append the tombstone (unless there is one), then purge all before it, the job's metrics,
    progress and files; the tombstone's sequence (0 if another pass appended it first)."""
    seq = 0
    if tombstone:
        events, last = await store.models.load(subjects.model_events(model_id))
        state = fold_model(events)
        deleted = next((e for e in reversed(events) if isinstance(e, ModelDeleted)), None)
        if deleted is None or state is None:
            return 0  # not deleted (or already a tombstone): nothing to do
        event = ModelPurged(
            model_id=model_id,
            name=state.name,
            username=state.username,
            deleted_at=deleted.occurred_at,
            actor=deleted.actor,
        )
        try:
            seq = await store.append(model_id, [event], last)
        except ConcurrencyError:
            return 0  # someone appended meanwhile: the next pass looks again
    await purge_subject(store.js, subjects.STREAM_MODELS, subjects.model_events(model_id), keep=1)
    await purge_subject(store.js, subjects.STREAM_PROGRESS, subjects.model_progress(model_id))
    await store.forget_model(model_id)
    log.info("model_purged", model_id=model_id)
    return seq


async def keep_purging(store: Store, limits: StorageLimits, stop: asyncio.Event) -> None:
    """Purge what is due now and every `purge_every` seconds until `stop`."""
    while not stop.is_set():
        try:
            await purge_deleted(store, limits.retention_days)
        except Exception:  # NATS away or a refused purge: the next pass retries
            log.exception("purge_failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), max(1.0, limits.purge_every))
