"""The tracking record `(consumer, stream, last_seq)`, written in the projection's transaction."""

from __future__ import annotations

from collections.abc import Sequence

import duckdb

from digits_proto import utcnow


def save(tx: duckdb.DuckDBPyConnection, consumer: str, stream: str, last_seq: int) -> None:
    """Record that every event of `stream` up to `last_seq` is applied (never moves back)."""
    tx.execute(
        """insert into tracking values (?, ?, ?)
           on conflict do update set last_seq = greatest(tracking.last_seq, excluded.last_seq)""",
        [consumer, stream, last_seq],
    )


def record_failures(
    tx: duckdb.DuckDBPyConnection, stream: str, failures: Sequence[tuple[int, str]]
) -> None:
    """Keep the events that could not be applied, for an operator to look at."""
    for seq, error in failures:
        tx.execute(
            "insert or replace into failures values (?, ?, ?, ?)", [stream, seq, error, utcnow()]
        )
