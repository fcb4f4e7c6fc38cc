"""Project device and lease events into `devices`, `leases` and `queue`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb

from digits_gateway.readmodel.live import LiveEvent
from digits_gateway.readmodel.projectors._jobs import dumps
from digits_gateway.readmodel.projectors._rows import Table, upsert
from digits_proto.gpus import (
    DevicesDiscovered,
    LeaseExpired,
    LeaseGranted,
    LeaseReleased,
    QueueChanged,
)


def apply(tx: duckdb.DuckDBPyConnection, items: Sequence[tuple[int, Any]]) -> list[LiveEvent]:
    """Apply a batch of (stream sequence, gpu event); nothing here goes to SSE.

    Leases are read once and upserted once; each QueueChanged is the whole queue, so only the
    batch's last one is written (with hundreds queued, one is hundreds of rows).
    """
    leases = Table(tx, "leases", "lease_id")
    leases.load(
        e.lease_id for _, e in items if isinstance(e, LeaseGranted | LeaseReleased | LeaseExpired)
    )
    queue: QueueChanged | None = None
    for _, event in items:
        match event:
            case DevicesDiscovered():
                _discovered(tx, event)
            case LeaseGranted():
                if leases.get(event.lease_id) is None:
                    leases.put(
                        {
                            "lease_id": event.lease_id,
                            "node_id": event.node_id,
                            "job_id": event.job_id,
                            "device_ids": dumps(event.device_ids),
                            "granted_at": event.occurred_at,
                            "state": "active",
                        }
                    )
            case LeaseReleased() | LeaseExpired():
                row = leases.get(event.lease_id)
                if row is not None:
                    state = "released" if isinstance(event, LeaseReleased) else "expired"
                    leases.put({**row, "state": state, "ended_at": event.occurred_at})
            case QueueChanged():
                queue = event
    leases.flush()
    if queue is not None:
        _queue(tx, queue)
    return []


def _discovered(tx: duckdb.DuckDBPyConnection, event: DevicesDiscovered) -> None:
    """A node's devices replace the ones it reported before (rare: once per broker start)."""
    tx.execute("delete from devices where node_id = ?", [event.node_id])
    rows = {
        d.device_id: (event.node_id, d.device_id, d.kind, d.index, d.name, d.memory_total, dumps(d))
        for d in event.devices
    }
    upsert(tx, "devices", list(rows.values()))


def _queue(tx: duckdb.DuckDBPyConnection, event: QueueChanged) -> None:
    tx.execute("delete from queue")
    rows = {
        e.job_id: (
            e.job_id,
            e.position,
            e.priority,
            e.user,
            e.count,
            dumps(e.device_indexes),
            e.node_id,
            e.reason,
            e.since,
        )
        for e in event.entries
    }
    upsert(tx, "queue", list(rows.values()))
