"""The audit view: who did what to which job or account, newest first."""

from __future__ import annotations

from datetime import datetime

import duckdb
import msgspec


class AuditEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One event a person caused; `on_behalf` when the actor is not the owner (an admin)."""

    stream: str
    seq: int
    occurred_at: datetime
    actor: str
    type: str
    aggregate: str
    owner: str
    on_behalf: bool


def audit_entries(
    cur: duckdb.DuckDBPyConnection, actor: str = "", job: str = "", limit: int = 500
) -> list[AuditEntry]:
    """Newest first, optionally only one actor's or one job's (or account's)."""
    sql = "select stream, seq, occurred, actor, type, aggregate, owner from audit where true"
    params: list[object] = []
    if actor:
        sql += " and actor = ?"
        params.append(actor)
    if job:
        sql += " and aggregate = ?"
        params.append(job)
    sql += " order by occurred desc, seq desc limit ?"
    params.append(limit)
    return [
        AuditEntry(
            stream=s,
            seq=q,
            occurred_at=at,
            actor=a,
            type=t,
            aggregate=g,
            owner=o,
            on_behalf=bool(o) and o != a,
        )
        for s, q, at, a, t, g, o in cur.execute(sql, params).fetchall()
    ]
