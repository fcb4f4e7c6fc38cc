"""Project every event a person caused (a non-empty `actor`) into the `audit` table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb

# The aggregate id field of each context's events, in the order they are looked for.
AGGREGATE_FIELDS = ("dataset_id", "model_id", "username")


def record(tx: duckdb.DuckDBPyConnection, stream: str, items: Sequence[tuple[int, Any]]) -> None:
    """Insert one row per event with an actor; replays are no-ops (keyed by stream and seq).

    Runs after the stream's own projector in the same transaction, so a job created in this
    batch already has its owner in `jobs`.
    """
    for seq, event in items:
        actor = getattr(event, "actor", "")
        if not actor:
            continue
        field = next((f for f in AGGREGATE_FIELDS if hasattr(event, f)), None)
        aggregate = str(getattr(event, field)) if field else ""
        if field == "username":
            owner = aggregate  # an account is its own owner
        else:
            row = tx.execute("select username from jobs where id = ?", [aggregate]).fetchone()
            owner = row[0] if row else ""
        tx.execute(
            "insert into audit values (?, ?, ?, ?, ?, ?, ?) on conflict do nothing",
            [stream, seq, event.occurred_at, actor, type(event).__name__, aggregate, owner],
        )
