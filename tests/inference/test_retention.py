"""Classify-many blobs are deleted after the retention period or once their model is deleted."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import msgspec
from nats.js.errors import NotFoundError

from digits_inference.registry import Registry
from digits_inference.retention import TRANSIENT, Sweeper, age_seconds
from digits_proto import codec, subjects
from digits_proto.inference import ManyStatus, many_status_name
from digits_proto.models import ModelCreated, ModelDeleted, TrainSpec
from digits_proto.runtime import EventStore, put_bytes

DAY = 24 * 3600.0


async def add_run(js, run_id: str, job_id: str) -> None:
    """A finished classify-many job of `job_id`: its status and result blobs."""
    status = ManyStatus(run_id=run_id, job_id=job_id, status="Done", done=1, total=1)
    await put_bytes(
        js, subjects.BUCKET_UPLOADS, many_status_name(run_id), msgspec.json.encode(status)
    )
    await put_bytes(js, subjects.BUCKET_UPLOADS, f"classify-many/{run_id}/result.json", b"{}")


async def names(js) -> set[str]:
    """The live object names in the uploads bucket."""
    store = await js.object_store(subjects.BUCKET_UPLOADS)
    try:
        return {i.name for i in await store.list(ignore_deletes=True)}
    except NotFoundError:
        return set()


async def add_model(js, model_id: str, deleted: bool = False) -> None:
    """A model's events (and its deletion when asked)."""
    events: list = [
        ModelCreated(model_id=model_id, name=model_id, dataset_id="d", spec=TrainSpec())
    ]
    if deleted:
        events.append(ModelDeleted(model_id=model_id))
    store = EventStore(js, subjects.STREAM_MODELS, codec.model_events)
    await store.append(subjects.model_events(model_id), events, 0)


def test_age_of_an_object_store_mtime() -> None:
    """ISO times (with a zone) give their age; missing or odd ones count as brand new."""
    now = time.time()
    stamp = datetime.fromtimestamp(now - 90, UTC).isoformat()
    assert abs(age_seconds(stamp, now) - 90) < 1
    assert age_seconds(None, now) == age_seconds("yesterday", now) == 0.0


async def test_finished_job_blobs_go_after_the_retention_period(js) -> None:
    """Within the period everything stays; a sweep a day later deletes status and result."""
    await add_model(js, "m")
    await add_run(js, "20260101-000000-aaaa", "m")
    sweeper = Sweeper(js, Registry(js), retention=DAY)
    assert await sweeper.sweep() == []
    assert len(await names(js)) == 2
    deleted = await sweeper.sweep(now=time.time() + DAY + 60)
    assert sorted(deleted) == [
        "classify-many/20260101-000000-aaaa/result.json",
        "classify-many/20260101-000000-aaaa/status.json",
    ]
    assert await names(js) == set()


async def test_job_blobs_go_at_once_when_their_model_is_deleted(js) -> None:
    """A fresh job of a deleted model is swept; a fresh job of a live model stays."""
    await add_model(js, "gone", deleted=True)
    await add_model(js, "kept")
    await add_run(js, "20260101-000000-gone", "gone")
    await add_run(js, "20260101-000000-kept", "kept")
    await Sweeper(js, Registry(js), retention=DAY).sweep()
    assert await names(js) == {
        "classify-many/20260101-000000-kept/status.json",
        "classify-many/20260101-000000-kept/result.json",
    }


async def test_leftover_transient_blobs_go_after_an_hour_and_inputs_after_retention(js) -> None:
    """Sync results and visualizations go after an hour; a queued job's list stays a day."""
    for name in ("classify-many/abc.json", "visualizations/v1", "lists/l1.txt"):
        await put_bytes(js, subjects.BUCKET_UPLOADS, name, b"x")
    sweeper = Sweeper(js, Registry(js), retention=DAY)
    assert await sweeper.sweep(now=time.time() + 60) == []
    await sweeper.sweep(now=time.time() + TRANSIENT + 60)
    assert await names(js) == {"lists/l1.txt"}
    await sweeper.sweep(now=time.time() + DAY + 60)
    assert await names(js) == set()
