"""Project dataset events into `jobs`, `status_history` and `dataset_details`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb
import msgspec

from digits_gateway.readmodel.live import LiveEvent
from digits_gateway.readmodel.projectors import _jobs, tombstones
from digits_gateway.readmodel.projectors._jobs import dumps
from digits_proto import subjects
from digits_proto.datasets import (
    DatasetAborted,
    DatasetBuildStarted,
    DatasetBuilt,
    DatasetCreated,
    DatasetDeleted,
    DatasetEdited,
    DatasetFailed,
    DatasetFolderParsed,
    DatasetProgressed,
    DatasetPurged,
)

STREAM = subjects.STREAM_DATASETS
SPLIT_ORDER = ("train", "val", "test")


def apply(tx: duckdb.DuckDBPyConnection, items: Sequence[tuple[int, Any]]) -> list[LiveEvent]:
    """Apply a batch of (stream sequence, dataset event): its rows are read once and written
    back once."""
    jobs = _jobs.Jobs(tx, {e.dataset_id for _, e in items if hasattr(e, "dataset_id")})
    live: list[LiveEvent] = []
    for seq, event in items:
        live += apply_one(jobs, seq, event)
    jobs.flush()
    return live


def apply_one(jobs: _jobs.Jobs, seq: int, event: Any) -> list[LiveEvent]:
    """Apply one dataset event to the batch's rows."""
    common = {"stream": STREAM, "seq": seq, "at": event.occurred_at}
    match event:
        case DatasetCreated():
            if jobs.details.get(event.dataset_id) is None:
                jobs.details.put({"dataset_id": event.dataset_id})
            return _jobs.create(
                jobs,
                **common,
                job_id=event.dataset_id,
                type="dataset",
                name=event.name,
                username=event.username,
                group=event.group,
                spec=event.spec,
                form=event.form,
                idempotency=(event.idempotency_key, event.request_digest),
            )
        case DatasetBuildStarted():
            return _build_started(jobs, seq, event)
        case DatasetFolderParsed():
            _update_details(
                jobs,
                event.dataset_id,
                folder=event.folder,
                labels=dumps(event.labels),
                split_counts=dumps(event.split_counts),
                warnings=dumps(event.warnings),
            )
            return []
        case DatasetProgressed():
            progress = overall_progress(jobs, event)
            return _jobs.set_progress(
                jobs,
                **common,
                job_id=event.dataset_id,
                progress=progress,
                eta_seconds=event.eta_seconds,
            )
        case DatasetBuilt():
            _update_details(
                jobs,
                event.dataset_id,
                labels=dumps(event.labels),
                splits=dumps(event.splits),
                image_width=event.image_width,
                image_height=event.image_height,
                image_channels=event.image_channels,
                encoding=event.encoding,
                mean=dumps(event.mean),
                mean_jpg=dumps(event.mean_jpg),
                labels_blob=dumps(event.labels_blob),
                errors=dumps(event.errors),
            )
            return _jobs.set_status(jobs, **common, job_id=event.dataset_id, status="Done")
        case DatasetFailed():
            return _jobs.set_status(
                jobs, **common, job_id=event.dataset_id, status="Error", error=event.error
            )
        case DatasetAborted():
            return _jobs.set_status(jobs, **common, job_id=event.dataset_id, status="Aborted")
        case DatasetDeleted():
            return _jobs.mark_deleted(
                jobs, stream=STREAM, seq=seq, job_id=event.dataset_id, at=event.occurred_at
            )
        case DatasetEdited():
            return _jobs.edit(
                jobs,
                **common,
                job_id=event.dataset_id,
                name=event.name,
                notes=event.notes,
                tags=event.tags,
            )
        case DatasetPurged():
            return tombstones.purged(
                jobs, stream=STREAM, seq=seq, job_id=event.dataset_id, type="dataset", event=event
            )
    return []


def _update_details(jobs: _jobs.Jobs, dataset_id: str, **values: Any) -> dict[str, Any] | None:
    """Change a dataset's details row if it exists (as an UPDATE would); the new row."""
    row = jobs.details.get(dataset_id)
    if row is None:
        return None
    jobs.details.put({**row, **values})
    return jobs.details.get(dataset_id)


def overall_progress(jobs: _jobs.Jobs, event: DatasetProgressed) -> float:
    """Progress over the whole build: the builder counts each split from zero again."""
    row = _update_details(jobs, event.dataset_id, phase=event.phase)
    counts: dict[str, int] = (
        msgspec.json.decode(row["split_counts"]) if row and row["split_counts"] else {}
    )
    whole = sum(counts.get(s, 0) for s in SPLIT_ORDER)
    if event.phase in SPLIT_ORDER and whole:
        before = sum(counts.get(s, 0) for s in SPLIT_ORDER[: SPLIT_ORDER.index(event.phase)])
        return (before + min(event.done, counts.get(event.phase, event.done))) / whole
    return event.done / event.total if event.total else 0.0


def _build_started(jobs: _jobs.Jobs, seq: int, event: DatasetBuildStarted) -> list[LiveEvent]:
    """A build started; a start while the build runs already means its worker was lost (the
    ticket came back to another): its history row says so."""
    row = jobs.live(event.dataset_id)
    again = row is not None and row["status"] == "Running" and (row["status_seq"] or 0) < seq
    by = f" by {event.worker}" if event.worker else ""
    return _jobs.set_status(
        jobs,
        stream=STREAM,
        seq=seq,
        at=event.occurred_at,
        job_id=event.dataset_id,
        status="Running",
        note=f"restarted{by} after the worker was lost" if again else None,
    )
