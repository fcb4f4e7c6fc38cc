"""A purged job's tombstone (ModelPurged / DatasetPurged): the job stays known as deleted.

After the retention window the job's history is purged from its stream and only the tombstone
remains; on a rebuild it is all the projection sees, so the row is created from it (name, owner)
and marked deleted. Who deleted it is the tombstone's `actor`, recorded by the audit projector.
"""

from __future__ import annotations

from typing import Any

from digits_gateway.readmodel.live import LiveEvent
from digits_gateway.readmodel.projectors import _jobs


def purged(
    tx: _jobs.Jobs, *, stream: str, seq: int, job_id: str, type: str, event: Any
) -> list[LiveEvent]:
    """Create the deleted row if its history is gone, else mark the known row deleted."""
    at = event.deleted_at or event.occurred_at
    if _jobs.job(tx, job_id) is None:
        _jobs.create(
            tx,
            stream=stream,
            seq=seq,
            job_id=job_id,
            type=type,
            name=event.name,
            username=event.username,
            group="",
            at=at,
            spec={},
            form={},
            early_progress=False,  # a stray progress message outlived the purge: not shown
        )
    return _jobs.mark_deleted(tx, stream=stream, seq=seq, job_id=job_id, at=at)
