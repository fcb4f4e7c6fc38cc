"""Project the progress stream (each job's latest TrainingProgressed / DatasetProgressed).

Progress has its own stream, consumed apart from the job's history, so a late progress event
must not undo an end: only a job still queued or running takes it (an end sets its own). On a
rebuild either stream may run ahead of the other, so an ended job still takes the furthest epoch
and progress it reached, and progress for a job not created yet waits in `early_progress` for
its creation: the views come out the same in either order, as they were live.
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
        row = jobs.rows.get(job_id)
        if row is None:
            _keep_early(jobs, seq, job_id, epoch, progress, event.eta_seconds)
            continue
        if row["deleted"]:
            continue
        if row["status"] not in _jobs.RUNNING:
            _keep_furthest(jobs, row, epoch, progress)
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


def _keep_early(
    jobs: _jobs.Jobs,
    seq: int,
    job_id: str,
    epoch: float | None,
    progress: float,
    eta_seconds: float | None,
) -> None:
    """Progress of a job not created yet (its own stream is behind on a rebuild): kept, the
    latest only, for the job's creation to start from."""
    early = jobs.early.get(job_id)
    if early is None or early["seq"] < seq:
        row = {"job_id": job_id, "seq": seq, "progress": min(1.0, max(0.0, progress))}
        jobs.early.put({**row, "eta_seconds": eta_seconds, "epoch": epoch})


def _keep_furthest(
    jobs: _jobs.Jobs, row: dict[str, Any], epoch: float | None, progress: float
) -> None:
    """The furthest epoch and progress an ended job reported (a resume may have gone back,
    never past the end), as live it shows them; its status and times stay as the end set them."""
    if row["deleted"]:
        return
    furthest = {
        "epoch": max(row["epoch"] or 0.0, epoch) if epoch is not None else row["epoch"],
        "progress": max(row["progress"] or 0.0, min(1.0, progress)),
    }
    if furthest["epoch"] != row["epoch"] or furthest["progress"] != row["progress"]:
        jobs.rows.put({**row, **furthest})
