"""Deleted datasets purged after the retention window, behind their tombstone (real nats-server)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from digits_datasets.purge import purge_deleted
from digits_proto import codec, subjects
from digits_proto.datasets import (
    DatasetCreated,
    DatasetDeleted,
    DatasetProgressed,
    DatasetPurged,
    DatasetSpec,
)
from digits_proto.runtime import EventStore, put_bytes

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


async def test_a_dataset_deleted_before_the_window_leaves_only_its_tombstone(js) -> None:
    """Given datasets deleted 10 and 1 days ago, when a pass runs with a 7-day window, then the
    old one keeps only DatasetPurged (owner, who deleted it) and its shards and progress go."""
    store = EventStore(js, subjects.STREAM_DATASETS, codec.dataset_events)
    for dataset_id, days in (("old", 10), ("recent", 1)):
        subject = subjects.dataset_events(dataset_id)
        created = DatasetCreated(
            dataset_id=dataset_id, name=dataset_id, username="alice", spec=DatasetSpec()
        )
        seq = await store.append(subject, [created], 0)
        deleted = DatasetDeleted(
            dataset_id=dataset_id, actor="admin", occurred_at=NOW - timedelta(days=days)
        )
        await store.append(subject, [deleted], seq)
        progress = DatasetProgressed(dataset_id=dataset_id, phase="train", done=1, total=2)
        await js.publish(subjects.dataset_progress(dataset_id), codec.encode(progress))
        await put_bytes(js, subjects.BUCKET_DATASETS, f"{dataset_id}/train-0.rec", b"x" * 500)

    assert await purge_deleted(js, store, 7.0, NOW) == 1

    (tombstone,) = (await store.load(subjects.dataset_events("old")))[0]
    assert isinstance(tombstone, DatasetPurged)
    assert (tombstone.username, tombstone.actor) == ("alice", "admin")
    recent, _ = await store.load(subjects.dataset_events("recent"))
    assert [type(e) for e in recent] == [DatasetCreated, DatasetDeleted]
    info = await js.stream_info(subjects.STREAM_PROGRESS, subjects_filter=subjects.PROGRESS_EVENTS)
    assert set(info.state.subjects or {}) == {subjects.dataset_progress("recent")}
    bucket = await js.object_store(subjects.BUCKET_DATASETS)
    assert {i.name for i in await bucket.list() if not i.deleted} == {"recent/train-0.rec"}
    assert await purge_deleted(js, store, 7.0, NOW) == 0
