"""Progress lives on its own stream, projected apart from the job's history: on a rebuild
either stream may be applied ahead of the other, and the views must come out as they were live."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from digits_gateway.readmodel.db import ReadModel
from digits_gateway.readmodel.projectors import PROJECTORS
from digits_proto import subjects
from digits_proto.models import (
    ModelAborted,
    ModelCreated,
    ModelPurged,
    TrainingCompleted,
    TrainingProgressed,
    TrainingStarted,
    TrainSpec,
)

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def _history(job: str, end) -> list[tuple[int, object]]:
    return [
        (
            1,
            ModelCreated(
                model_id=job,
                name="lenet",
                username="alice",
                actor="alice",
                dataset_id="d1",
                spec=TrainSpec(train_epochs=2),
                form={},
                occurred_at=T0,
            ),
        ),
        (
            2,
            TrainingStarted(
                model_id=job, node_id="n1", devices=["cpu0"], lease_id="l1", occurred_at=T0
            ),
        ),
        (3, end),
    ]


def _progress(job: str, epochs: list[float]) -> list[tuple[int, object]]:
    return [
        (
            i + 1,
            TrainingProgressed(
                model_id=job,
                epoch=e,
                progress=e / 2,
                eta_seconds=5.0,
                occurred_at=T0 + timedelta(seconds=i),
            ),
        )
        for i, e in enumerate(epochs)
    ]


def _project(tmp_path, batches: list[tuple[str, list[tuple[int, object]]]]):
    db = ReadModel(tmp_path / "rm.duckdb")
    for stream, items in batches:
        with db.transaction() as tx:
            PROJECTORS[stream][1](tx, items)
    with db.cursor() as cur:
        rows = cur.execute(
            "select id, status, epoch, progress, deleted from jobs order by id"
        ).fetchall()
        early = cur.execute("select count(*) from early_progress").fetchone()
    db.close()
    return rows, early


ENDS = {
    "done": (TrainingCompleted(model_id="m1", occurred_at=T0), [1.0, 1.5, 2.0], "Done", 2.0, 1.0),
    "aborted": (
        ModelAborted(model_id="m1", actor="alice", occurred_at=T0),
        [0.6, 1.2],
        "Aborted",
        1.2,
        0.6,
    ),
}


@pytest.mark.parametrize("end", sorted(ENDS))
@pytest.mark.parametrize("first", ["history", "progress"])
def test_an_ended_job_reads_the_same_whichever_stream_is_applied_first(
    tmp_path, end: str, first: str
) -> None:
    """Given a job that ended (Done at epoch 2, or Aborted
    at 60 %), when its history and its progress are applied in either order, then the job
    reads as it did live — status, furthest epoch and progress — and no early record is left."""
    event, epochs, status, epoch, progress = ENDS[end]
    history = (subjects.STREAM_MODELS, _history("m1", event))
    progress_batch = (subjects.STREAM_PROGRESS, _progress("m1", epochs))
    order = [history, progress_batch] if first == "history" else [progress_batch, history]
    rows, early = _project(tmp_path, order)
    assert rows == [("m1", status, epoch, progress, False)]
    assert early == (0,)


def test_a_running_job_takes_progress_that_came_before_it(tmp_path) -> None:
    """Given progress applied before the job's creation (a rebuild), when the job's history
    arrives and it is still running, then it shows that progress."""
    history = _history(
        "m1",
        TrainingStarted(
            model_id="m1", node_id="n1", devices=["cpu0"], lease_id="l1", occurred_at=T0
        ),
    )
    rows, early = _project(
        tmp_path,
        [
            (subjects.STREAM_PROGRESS, _progress("m1", [0.4, 0.8])),
            (subjects.STREAM_MODELS, history),
        ],
    )
    assert rows == [("m1", "Running", 0.8, 0.4, False)]
    assert early == (0,)


def test_a_purged_job_shows_no_stray_progress(tmp_path) -> None:
    """Given a stray progress message that outlived its job's purge, applied before the
    tombstone, then the tombstone's row is deleted with no progress and no early record."""
    tomb = ModelPurged(model_id="m1", name="lenet", username="alice", actor="bob", occurred_at=T0)
    rows, early = _project(
        tmp_path,
        [(subjects.STREAM_PROGRESS, _progress("m1", [1.0])), (subjects.STREAM_MODELS, [(1, tomb)])],
    )
    assert rows == [("m1", "Initialized", None, 0.0, True)]
    assert early == (0,)
