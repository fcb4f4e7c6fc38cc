"""Project model-job events into `jobs`, `status_history` and `snapshots`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb

from digits_gateway.readmodel.live import LiveEvent
from digits_gateway.readmodel.projectors import _jobs, tombstones
from digits_gateway.readmodel.projectors._jobs import dumps
from digits_proto import subjects
from digits_proto.models import (
    ModelAborted,
    ModelCreated,
    ModelDeleted,
    ModelEdited,
    ModelPurged,
    ModelWaiting,
    PretrainedModelCreated,
    SnapshotDeleted,
    SnapshotSaved,
    TrainingCompleted,
    TrainingFailed,
    TrainingProgressed,
    TrainingStarted,
    WorkerLost,
)

STREAM = subjects.STREAM_MODELS


def apply(tx: duckdb.DuckDBPyConnection, items: Sequence[tuple[int, Any]]) -> list[LiveEvent]:
    """Apply a batch of (stream sequence, model event): its rows are read once and written
    back once."""
    jobs = _jobs.Jobs(tx, {e.model_id for _, e in items if hasattr(e, "model_id")})
    live: list[LiveEvent] = []
    for seq, event in items:
        live += apply_one(jobs, seq, event)
    jobs.flush()
    return live


def apply_one(jobs: _jobs.Jobs, seq: int, event: Any) -> list[LiveEvent]:
    """Apply one model event to the batch's rows."""
    common = {"stream": STREAM, "seq": seq, "at": event.occurred_at}
    match event:
        case ModelCreated():
            return _jobs.create(
                jobs,
                **common,
                job_id=event.model_id,
                type="model",
                name=event.name,
                username=event.username,
                group=event.group,
                spec=event.spec,
                form=event.form,
                dataset_id=event.dataset_id,
                idempotency=(event.idempotency_key, event.request_digest),
            )
        case PretrainedModelCreated():
            return _jobs.create(
                jobs,
                **common,
                job_id=event.model_id,
                type="pretrained_model",
                name=event.name,
                username=event.username,
                group=event.group,
                spec=pretrained_spec(event),
                form={},
                idempotency=(event.idempotency_key, event.request_digest),
            )
        case ModelWaiting():
            return _jobs.set_status(
                jobs, **common, job_id=event.model_id, status="Waiting", detail=event.reason
            )
        case TrainingStarted() | WorkerLost():
            return _running(jobs, seq, event)
        case TrainingProgressed():
            return _jobs.set_progress(
                jobs,
                **common,
                job_id=event.model_id,
                progress=event.progress,
                eta_seconds=event.eta_seconds,
                epoch=event.epoch,
            )
        case SnapshotSaved():
            return _snapshot(jobs, seq, event)
        case SnapshotDeleted():
            return _snapshot_deleted(jobs, seq, event)
        case TrainingCompleted():
            return _jobs.set_status(jobs, **common, job_id=event.model_id, status="Done")
        case TrainingFailed():
            return _jobs.set_status(
                jobs, **common, job_id=event.model_id, status="Error", error=event.error
            )
        case ModelAborted():
            return _jobs.set_status(
                jobs, **common, job_id=event.model_id, status="Aborted", detail=event.reason
            )
        case ModelDeleted():
            return _jobs.mark_deleted(
                jobs, stream=STREAM, seq=seq, job_id=event.model_id, at=event.occurred_at
            )
        case ModelEdited():
            return _jobs.edit(
                jobs,
                **common,
                job_id=event.model_id,
                name=event.name,
                notes=event.notes,
                tags=event.tags,
            )
        case ModelPurged():
            return tombstones.purged(
                jobs, stream=STREAM, seq=seq, job_id=event.model_id, type="model", event=event
            )
    return []


def pretrained_spec(event: PretrainedModelCreated) -> dict[str, Any]:
    """What the pretrained model's page and JSON show (its network source stays on the bus)."""
    return {
        "framework": event.framework,
        "source": event.source,
        "source_model_id": event.source_model_id,
        "resize_width": event.width,
        "resize_height": event.height,
        "resize_channels": event.channels,
        "resize_mode": event.resize_mode,
        "labels": event.labels,
        "use_mean": event.use_mean,
        "crop_size": event.crop_size,
        "has_mean": event.mean is not None,
        "standard_network": event.standard_network,
        "fine_tunable": bool(event.standard_network or event.custom_network.strip()),
    }


def _running(jobs: _jobs.Jobs, seq: int, event: TrainingStarted | WorkerLost) -> list[LiveEvent]:
    if isinstance(event, WorkerLost):
        return _worker_lost(jobs, seq, event)
    return _started(jobs, seq, event)


def _started(jobs: _jobs.Jobs, seq: int, event: TrainingStarted) -> list[LiveEvent]:
    row = jobs.rows.get(event.model_id)
    if row is not None:  # as an UPDATE would: even a deleted row takes them
        jobs.rows.put({**row, "devices": dumps(event.devices), "attempt": event.attempt})
    # A job Running already (its worker was lost: WorkerLost's row says so) gets no second row.
    again = row is not None and row["status"] == "Running" and (row["status_seq"] or 0) < seq
    return _jobs.set_status(
        jobs,
        stream=STREAM,
        seq=seq,
        at=event.occurred_at,
        job_id=event.model_id,
        status="Running",
        history=not again,
    )


def _worker_lost(jobs: _jobs.Jobs, seq: int, event: WorkerLost) -> list[LiveEvent]:
    """Another trainer takes over a job whose worker was lost: one history row says so (none
    when the loss bound ends the job: its Error row names the cause)."""
    if event.ended:
        return []
    lost = f" on {event.node_id}" if event.node_id and event.node_id != "unknown" else ""
    note = f"resumed after the worker{lost} was lost"
    return _jobs.set_status(
        jobs,
        stream=STREAM,
        seq=seq,
        at=event.occurred_at,
        job_id=event.model_id,
        status="Running",
        detail=note,
        note=note,
    )


def _snapshot(jobs: _jobs.Jobs, seq: int, event: SnapshotSaved) -> list[LiveEvent]:
    if jobs.live(event.model_id) is None:
        return []
    jobs.save_snapshot(
        (
            event.model_id,
            event.epoch,
            seq,
            dumps(event.symbol),
            dumps(event.params),
            dumps(event.state),
            dumps(event.input_shape),
        )
    )
    data = {"job_id": event.model_id, "epoch": event.epoch}
    return [LiveEvent(stream=STREAM, seq=seq, job_id=event.model_id, kind="snapshot", data=data)]


def _snapshot_deleted(jobs: _jobs.Jobs, seq: int, event: SnapshotDeleted) -> list[LiveEvent]:
    """Retention dropped a snapshot: it is no longer offered for download or inference."""
    jobs.drop_snapshot(event.model_id, event.epoch)
    data = {"job_id": event.model_id, "epoch": event.epoch, "deleted": True}
    return [LiveEvent(stream=STREAM, seq=seq, job_id=event.model_id, kind="snapshot", data=data)]
