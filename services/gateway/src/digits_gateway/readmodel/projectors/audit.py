"""Project every event a person caused (a non-empty `actor`) into the `audit` table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb

from digits_gateway.readmodel.projectors._rows import upsert

# The aggregate id field of each context's events, in the order they are looked for.
AGGREGATE_FIELDS = ("dataset_id", "model_id", "username")


def record(tx: duckdb.DuckDBPyConnection, stream: str, items: Sequence[tuple[int, Any]]) -> None:
    """Insert one row per event with an actor; replays are no-ops (keyed by stream and seq).

    Runs after the stream's own projector in the same transaction, so a job created in this
    batch already has its owner in `jobs` (read in one query for the whole batch).
    """
    pending: list[tuple[int, Any, str, str]] = []  # seq, event, aggregate field, aggregate
    for seq, event in items:
        if not getattr(event, "actor", ""):
            continue
        field = next((f for f in AGGREGATE_FIELDS if hasattr(event, f)), None)
        pending.append((seq, event, field or "", str(getattr(event, field)) if field else ""))
    if not pending:
        return
    jobs = [aggregate for _, _, field, aggregate in pending if field != "username"]
    owners = dict(
        tx.execute(
            "select id, username from jobs where id in (select unnest(?))", [jobs]
        ).fetchall()
        if jobs
        else []
    )
    rows = [
        (
            stream,
            seq,
            event.occurred_at,
            event.actor,
            type(event).__name__,
            aggregate,
            # an account is its own owner
            aggregate if field == "username" else owners.get(aggregate, ""),
        )
        for seq, event, field, aggregate in pending
    ]
    upsert(tx, "audit", rows)
