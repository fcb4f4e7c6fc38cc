"""Project training metrics into `metrics`: one row per (job, phase, iteration, name)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb

from digits_gateway.readmodel.live import LiveEvent
from digits_proto import subjects
from digits_proto.models import MetricsRecorded

STREAM = subjects.STREAM_METRICS


def apply(tx: duckdb.DuckDBPyConnection, items: Sequence[tuple[int, Any]]) -> list[LiveEvent]:
    """Upsert a batch through the Appender (stack-facts §6: executemany is ~1k rows/s).

    The key makes a redelivered or re-recorded point replace the old one, never add a row.
    Points of deleted jobs are dropped (their stream may be replayed after the delete).
    """
    events = [(seq, e) for seq, e in items if isinstance(e, MetricsRecorded)]
    if not events:
        return []
    ids = sorted({e.model_id for _, e in events})
    marks = ",".join("?" * len(ids))
    deleted = {
        row[0]
        for row in tx.execute(
            f"select id from jobs where deleted and id in ({marks})", ids
        ).fetchall()
    }
    rows: dict[tuple[str, str, int, str], tuple[Any, ...]] = {}
    live: list[LiveEvent] = []
    for seq, e in events:
        if e.model_id in deleted:
            continue
        for name, value in e.values.items():
            # Later events win inside one batch too (the appender keeps the first duplicate).
            rows[(e.model_id, e.phase, e.iteration, name)] = (
                e.model_id,
                e.phase,
                e.iteration,
                name,
                e.epoch,
                value,
                seq,
                e.occurred_at.timestamp(),  # when it was measured: charts by wall time
            )
        data = {
            "job_id": e.model_id,
            "epoch": e.epoch,
            "iteration": e.iteration,
            "phase": e.phase,
            "values": e.values,
            "occurred": e.occurred_at.timestamp(),
        }
        live.append(LiveEvent(stream=STREAM, seq=seq, job_id=e.model_id, kind="metric", data=data))
    if rows:
        appender = tx.appender("metrics", action="upsert")
        appender.append_rows(list(rows.values()))
        appender.flush()
    return live
