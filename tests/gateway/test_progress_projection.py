"""Progress lives on its own stream, projected apart from the job's history."""

from __future__ import annotations

from digits_proto import codec, subjects
from digits_proto.models import (
    ModelCreated,
    TrainingCompleted,
    TrainingProgressed,
    TrainingStarted,
    TrainSpec,
)
from digits_proto.runtime import EventStore
from tests.gateway.test_projector import caught_up, project


async def test_a_rebuild_keeps_the_epoch_an_ended_job_reached(js, tmp_path) -> None:
    """Given a finished job whose progress reached epoch 2 (on a rebuild the models stream is
    projected ahead of the progress stream, so its progress arrives after its end), when the
    read model is built, then the job is Done at epoch 2, as it was live; a stale progress
    event (epoch 1.5) does not move it back, and nothing turns it Running again."""
    models = EventStore(js, subjects.STREAM_MODELS, codec.model_events)
    spec = TrainSpec(train_epochs=2)
    await models.append(
        subjects.model_events("m1"),
        [
            ModelCreated(
                model_id="m1",
                name="lenet",
                username="alice",
                actor="alice",
                dataset_id="d1",
                spec=spec,
                form={},
            ),
            TrainingStarted(model_id="m1", node_id="n1", devices=["cpu0"], lease_id="l1"),
            TrainingCompleted(model_id="m1"),
        ],
        0,
    )
    for epoch in (1.0, 2.0, 1.5):
        await js.publish(
            subjects.model_progress("m1"),
            codec.encode(TrainingProgressed(model_id="m1", epoch=epoch, progress=epoch / 2)),
        )
    db, projection = await project(js, tmp_path / "rm.duckdb")
    await caught_up(js, projection)
    await projection.stop()
    with db.cursor() as cur:
        row = cur.execute("select status, epoch, progress from jobs where id = 'm1'").fetchone()
    db.close()
    assert row == ("Done", 2.0, 1.0)
