"""Project the progress stream (each job's latest TrainingProgressed / DatasetProgressed).

Progress has its own stream, consumed apart from the job's history, so a late progress event
must not undo an end: only a job still queued or running takes it (an end sets its own). An
ended job still takes the epoch it reached: on a rebuild the models stream runs ahead of this
one, so every progress event of a finished job arrives after its end.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb

from digits_gateway.readmodel.live import LiveEvent
from digits_gateway.readmodel.projectors import _jobs
from digits_gateway.readmodel.projectors.datasets import overall_progress
from digits_proto import subjects
from digits_proto.datasets import DatasetProgressed
from digits_proto.models import TrainingProgressed

STREAM = subjects.STREAM_PROGRESS


def apply(tx: duckdb.DuckDBPyConnection, items: Sequence[tuple[int, Any]]) -> list[LiveEvent]:
    """Apply a batch of (stream sequence, progress event): rows read once, written once."""
    ids = {getattr(e, "model_id", None) or getattr(e, "dataset_id", None) for _, e in items}
    jobs = _jobs.Jobs(tx, {i for i in ids if i})
    live: list[LiveEvent] = []
    for seq, event in items:
        match event:
            case TrainingProgressed():
                job_id, epoch, progress = event.model_id, event.epoch, event.progress
            case DatasetProgressed():
                job_id, epoch = event.dataset_id, None
                progress = overall_progress(jobs, event)
            case _:
                continue
        row = jobs.live(job_id)
        if row is None:
            continue
        if row["status"] not in _jobs.RUNNING:
            _keep_last_epoch(jobs, row, epoch)
            continue
        live += _jobs.set_progress(
            jobs,
            stream=STREAM,
            seq=seq,
            at=event.occurred_at,
            job_id=job_id,
            progress=progress,
            eta_seconds=event.eta_seconds,
            epoch=epoch,
        )
    jobs.flush()
    return live


def _keep_last_epoch(jobs: _jobs.Jobs, row: dict[str, Any], epoch: float | None) -> None:
    """The furthest epoch an ended job's progress reported (a resume may have gone back, never
    past the end), leaving its status, progress and times as the end set them."""
    if epoch is not None and not row["deleted"] and epoch > (row["epoch"] or 0.0):
        jobs.rows.put({**row, "epoch": epoch})
