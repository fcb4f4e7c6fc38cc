"""A purged job's tombstone in the read model: still known, deleted, and who deleted it."""

from __future__ import annotations

from datetime import UTC, datetime

from digits_proto import codec, subjects
from digits_proto.datasets import DatasetPurged
from digits_proto.models import ModelPurged, TrainingProgressed
from digits_proto.runtime import EventStore
from tests.gateway.test_projector import caught_up, project

DELETED_AT = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)


async def test_a_rebuild_from_tombstones_alone_keeps_the_jobs_as_deleted(js, tmp_path) -> None:
    """Given streams holding only tombstones (histories purged) and a stray progress event,
    when the read model is built, then each job is a deleted row with its name and owner, the
    audit names who deleted it, and the progress changes nothing."""
    models = EventStore(js, subjects.STREAM_MODELS, codec.model_events)
    datasets = EventStore(js, subjects.STREAM_DATASETS, codec.dataset_events)
    await models.append(
        subjects.model_events("m1"),
        [
            ModelPurged(
                model_id="m1", name="lenet", username="alice", deleted_at=DELETED_AT, actor="bob"
            )
        ],
        0,
    )
    await datasets.append(
        subjects.dataset_events("d1"),
        [DatasetPurged(dataset_id="d1", name="pets", username="alice", actor="alice")],
        0,
    )
    await js.publish(
        subjects.model_progress("m1"),
        codec.encode(TrainingProgressed(model_id="m1", epoch=1, progress=0.5)),
    )
    db, projection = await project(js, tmp_path / "rm.duckdb")
    await caught_up(js, projection)
    await projection.stop()
    with db.cursor() as cur:
        jobs = cur.execute(
            "select id, type, name, username, deleted, progress, epoch from jobs order by id"
        ).fetchall()
        audit = cur.execute(
            "select actor, type, aggregate, owner from audit order by aggregate"
        ).fetchall()
    db.close()
    assert jobs == [
        ("d1", "dataset", "pets", "alice", True, 0.0, None),
        ("m1", "model", "lenet", "alice", True, 0.0, None),
    ]
    assert audit == [
        ("alice", "DatasetPurged", "d1", "alice"),
        ("bob", "ModelPurged", "m1", "alice"),
    ]
