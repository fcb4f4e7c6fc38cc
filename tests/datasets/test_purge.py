"""Deleted datasets purged after the retention window, behind their tombstone (real nats-server)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from digits_datasets.purge import purge_deleted
from digits_proto import codec, subjects, versions
from digits_proto.base import Event
from digits_proto.datasets import (
    DatasetCreated,
    DatasetDeleted,
    DatasetProgressed,
    DatasetPurged,
    DatasetSpec,
)
from digits_proto.runtime import EventStore, put_bytes

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


class DeletedV1(Event, frozen=True, kw_only=True, tag="datasets.DatasetDeleted"):
    """A made-up version 1 of DatasetDeleted that kept the deletion time in `deleted_on`."""

    dataset_id: str
    deleted_on: datetime


def deleted_on_to_occurred_at(raw: dict[str, Any]) -> dict[str, Any]:
    return {**raw, "occurred_at": raw.pop("deleted_on")}


DELETED_V2 = versions.Versions(
    current={"datasets.DatasetDeleted": 2},
    upcasters={("datasets.DatasetDeleted", 1): deleted_on_to_occurred_at},
)


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


async def test_a_deletion_of_an_older_schema_version_is_upcast_before_it_is_judged(
    js, monkeypatch
) -> None:
    """Given a dataset whose last event is a version-1 deletion (its time in `deleted_on`,
    10 days ago), when a pass runs under code at version 2, then the head is read through its
    schema header and upcaster, so the dataset is found due and gets its tombstone."""
    store = EventStore(js, subjects.STREAM_DATASETS, codec.dataset_events)
    subject = subjects.dataset_events("old")
    created = DatasetCreated(dataset_id="old", name="old", username="alice", spec=DatasetSpec())
    seq = await store.append(subject, [created], 0)
    deleted = DeletedV1(dataset_id="old", deleted_on=NOW - timedelta(days=10))
    await store.append(subject, [deleted], seq)  # type: ignore[list-item]

    monkeypatch.setattr(versions, "REGISTRY", DELETED_V2)  # the code after the change
    assert await purge_deleted(js, store, 7.0, NOW) == 1

    (tombstone,) = (await store.load(subject))[0]
    assert isinstance(tombstone, DatasetPurged)
    assert tombstone.deleted_at == NOW - timedelta(days=10)
