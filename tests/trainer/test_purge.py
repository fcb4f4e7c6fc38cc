"""Deleted jobs purged after the retention window, behind their tombstone (real nats-server)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from nats.js.errors import NotFoundError

from digits_proto import codec, subjects
from digits_proto.models import (
    MetricsRecorded,
    ModelCreated,
    ModelDeleted,
    ModelPurged,
    TrainingProgressed,
    TrainSpec,
)
from digits_proto.runtime import StorageLimits, ensure_streams, put_bytes
from digits_trainer.purge import purge_deleted
from digits_trainer.store import Store

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


async def seed(store: Store, model_id: str, deleted_days_ago: float | None) -> None:
    """A job with metrics, progress and a snapshot blob; deleted that long ago (None: live)."""
    created = ModelCreated(
        model_id=model_id,
        name=f"job {model_id}",
        username="alice",
        dataset_id="d1",
        spec=TrainSpec(),
        occurred_at=NOW - timedelta(days=30),
    )
    seq = await store.append(model_id, [created], 0)
    for i in range(3):
        await store.record_metrics(
            MetricsRecorded(model_id=model_id, epoch=i, iteration=i, phase="train", values={})
        )
        await store.publish_progress(TrainingProgressed(model_id=model_id, epoch=i, progress=i / 3))
    await put_bytes(store.js, subjects.BUCKET_MODELS, f"{model_id}/snapshot-1.params", b"w" * 999)
    if deleted_days_ago is not None:
        at = NOW - timedelta(days=deleted_days_ago)
        await store.append(
            model_id, [ModelDeleted(model_id=model_id, actor="bob", occurred_at=at)], seq
        )


async def events(store: Store, model_id: str) -> list:
    return (await store.models.load(subjects.model_events(model_id)))[0]


async def subject_count(js, stream: str, subject: str) -> int:
    info = await js.stream_info(stream, subjects_filter=subject)
    return (info.state.subjects or {}).get(subject, 0)


async def blob_names(js) -> set[str]:
    bucket = await js.object_store(subjects.BUCKET_MODELS)
    try:
        return {i.name for i in await bucket.list() if not i.deleted}
    except NotFoundError:  # nats-py: an empty bucket
        return set()


async def test_a_job_deleted_before_the_window_leaves_only_its_tombstone(js) -> None:
    """Given jobs deleted 8 and 2 days ago and a live one, when a pass runs with a 7-day window,
    then the old one keeps only ModelPurged (who deleted it, when); its metrics, progress and
    blobs are gone; the others are untouched; a second pass does nothing."""
    store = Store.on(js)
    await seed(store, "old", 8)
    await seed(store, "recent", 2)
    await seed(store, "live", None)

    assert await purge_deleted(store, 7.0, NOW) == 1

    (tombstone,) = await events(store, "old")
    assert isinstance(tombstone, ModelPurged)
    assert (tombstone.name, tombstone.username, tombstone.actor) == ("job old", "alice", "bob")
    assert tombstone.deleted_at == NOW - timedelta(days=8)
    assert await subject_count(js, subjects.STREAM_METRICS, subjects.model_metrics("old")) == 0
    assert await subject_count(js, subjects.STREAM_PROGRESS, subjects.model_progress("old")) == 0
    assert [type(e) for e in await events(store, "recent")] == [ModelCreated, ModelDeleted]
    assert [type(e) for e in await events(store, "live")] == [ModelCreated]
    assert {n.split("/")[0] for n in await blob_names(js)} == {"recent", "live"}

    assert await purge_deleted(store, 7.0, NOW) == 0


async def test_a_purge_cut_off_after_its_tombstone_is_finished_by_the_next_pass(js) -> None:
    """Given a tombstone appended just before a crash (history still behind it), when a pass
    runs, then everything before the tombstone goes."""
    store = Store.on(js)
    await seed(store, "cut", 9)
    _, seq = await store.models.load(subjects.model_events("cut"))
    await store.append("cut", [ModelPurged(model_id="cut", name="job cut", actor="bob")], seq)

    assert await purge_deleted(store, 7.0, NOW) == 1
    assert [type(e) for e in await events(store, "cut")] == [ModelPurged]
    assert await blob_names(js) == set()


async def test_progress_keeps_the_last_few_per_job_and_limits_change_in_place(js) -> None:
    """Given the progress stream keeping 2 per job, then a job's older progress goes; when the
    limit is reconciled to 1, the stream is updated in place (other jobs' messages kept)."""
    await ensure_streams(js, StorageLimits(progress_keep=2))
    store = Store.on(js)
    for job in ("a", "b"):
        for i in range(5):
            await store.publish_progress(TrainingProgressed(model_id=job, epoch=i, progress=i / 5))
    subject = subjects.model_progress("a")
    assert await subject_count(js, subjects.STREAM_PROGRESS, subject) == 2
    last = await js.get_last_msg(subjects.STREAM_PROGRESS, subject)
    assert codec.progress_events.decode(last.data).epoch == 4

    await ensure_streams(js, StorageLimits(progress_keep=1))
    info = await js.stream_info(subjects.STREAM_PROGRESS)
    assert info.config.max_msgs_per_subject == 1
    assert info.state.messages == 2  # one per job: trimmed, not recreated
