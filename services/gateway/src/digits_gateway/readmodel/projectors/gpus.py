"""Project device and lease events into `devices` and `leases`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb

from digits_gateway.readmodel.live import LiveEvent
from digits_gateway.readmodel.projectors._jobs import dumps
from digits_proto.gpus import (
    DevicesDiscovered,
    LeaseExpired,
    LeaseGranted,
    LeaseReleased,
    QueueChanged,
)


def apply(tx: duckdb.DuckDBPyConnection, items: Sequence[tuple[int, Any]]) -> list[LiveEvent]:
    """Apply a batch of (stream sequence, gpu event); nothing here goes to SSE."""
    for _, event in items:
        match event:
            case DevicesDiscovered():
                tx.execute("delete from devices where node_id = ?", [event.node_id])
                for d in event.devices:
                    tx.execute(
                        "insert or replace into devices values (?, ?, ?, ?, ?, ?, ?)",
                        [
                            event.node_id,
                            d.device_id,
                            d.kind,
                            d.index,
                            d.name,
                            d.memory_total,
                            dumps(d),
                        ],
                    )
            case LeaseGranted():
                tx.execute(
                    """insert into leases values (?, ?, ?, ?, ?, null, 'active')
                       on conflict do nothing""",
                    [
                        event.lease_id,
                        event.node_id,
                        event.job_id,
                        dumps(event.device_ids),
                        event.occurred_at,
                    ],
                )
            case LeaseReleased() | LeaseExpired():
                state = "released" if isinstance(event, LeaseReleased) else "expired"
                tx.execute(
                    "update leases set state = ?, ended_at = ? where lease_id = ?",
                    [state, event.occurred_at, event.lease_id],
                )
            case QueueChanged():
                # Each one is the whole queue: the last applied wins.
                tx.execute("delete from queue")
                for e in event.entries:
                    tx.execute(
                        "insert or replace into queue values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [
                            e.job_id,
                            e.position,
                            e.priority,
                            e.user,
                            e.count,
                            dumps(e.device_indexes),
                            e.node_id,
                            e.reason,
                            e.since,
                        ],
                    )
    return []
