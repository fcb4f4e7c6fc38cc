"""Project dataset events into `jobs`, `status_history` and `dataset_details`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb
import msgspec

from digits_gateway.readmodel.live import LiveEvent
from digits_gateway.readmodel.projectors import _jobs
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
)

STREAM = subjects.STREAM_DATASETS
SPLIT_ORDER = ("train", "val", "test")


def apply(tx: duckdb.DuckDBPyConnection, items: Sequence[tuple[int, Any]]) -> list[LiveEvent]:
    """Apply a batch of (stream sequence, dataset event)."""
    live: list[LiveEvent] = []
    for seq, event in items:
        live += apply_one(tx, seq, event)
    return live


def apply_one(tx: duckdb.DuckDBPyConnection, seq: int, event: Any) -> list[LiveEvent]:
    """Apply one dataset event."""
    common = {"stream": STREAM, "seq": seq, "at": event.occurred_at}
    match event:
        case DatasetCreated():
            tx.execute(
                "insert into dataset_details (dataset_id) values (?) on conflict do nothing",
                [event.dataset_id],
            )
            return _jobs.create(
                tx,
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
            return _jobs.set_status(tx, **common, job_id=event.dataset_id, status="Running")
        case DatasetFolderParsed():
            tx.execute(
                """update dataset_details set folder = ?, labels = ?, split_counts = ?,
                     warnings = ? where dataset_id = ?""",
                [
                    event.folder,
                    dumps(event.labels),
                    dumps(event.split_counts),
                    dumps(event.warnings),
                    event.dataset_id,
                ],
            )
            return []
        case DatasetProgressed():
            progress = _overall(tx, event)
            return _jobs.set_progress(
                tx,
                **common,
                job_id=event.dataset_id,
                progress=progress,
                eta_seconds=event.eta_seconds,
            )
        case DatasetBuilt():
            tx.execute(
                """update dataset_details set labels = ?, splits = ?, image_width = ?,
                     image_height = ?, image_channels = ?, encoding = ?, mean = ?, mean_jpg = ?,
                     labels_blob = ?, errors = ? where dataset_id = ?""",
                [
                    dumps(event.labels),
                    dumps(event.splits),
                    event.image_width,
                    event.image_height,
                    event.image_channels,
                    event.encoding,
                    dumps(event.mean),
                    dumps(event.mean_jpg),
                    dumps(event.labels_blob),
                    dumps(event.errors),
                    event.dataset_id,
                ],
            )
            return _jobs.set_status(tx, **common, job_id=event.dataset_id, status="Done")
        case DatasetFailed():
            return _jobs.set_status(
                tx, **common, job_id=event.dataset_id, status="Error", error=event.error
            )
        case DatasetAborted():
            return _jobs.set_status(tx, **common, job_id=event.dataset_id, status="Aborted")
        case DatasetDeleted():
            return _jobs.mark_deleted(
                tx, stream=STREAM, seq=seq, job_id=event.dataset_id, at=event.occurred_at
            )
        case DatasetEdited():
            return _jobs.edit(
                tx, **common, job_id=event.dataset_id, name=event.name, notes=event.notes
            )
    return []


def _overall(tx: duckdb.DuckDBPyConnection, event: DatasetProgressed) -> float:
    """Progress over the whole build: the builder counts each split from zero again."""
    tx.execute(
        "update dataset_details set phase = ? where dataset_id = ?", [event.phase, event.dataset_id]
    )
    row = tx.execute(
        "select split_counts from dataset_details where dataset_id = ?", [event.dataset_id]
    ).fetchone()
    counts: dict[str, int] = msgspec.json.decode(row[0]) if row and row[0] else {}
    whole = sum(counts.get(s, 0) for s in SPLIT_ORDER)
    if event.phase in SPLIT_ORDER and whole:
        before = sum(counts.get(s, 0) for s in SPLIT_ORDER[: SPLIT_ORDER.index(event.phase)])
        return (before + min(event.done, counts.get(event.phase, event.done))) / whole
    return event.done / event.total if event.total else 0.0
