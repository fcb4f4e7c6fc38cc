"""Row changes every job projector shares: create, status, progress, delete (all idempotent)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import duckdb
import msgspec

from digits_gateway.readmodel.live import LiveEvent

JobRow = tuple[str, str, bool]  # type, name, deleted


def dumps(value: Any) -> str:
    """JSON text for a column."""
    return msgspec.json.encode(value).decode()


def job(tx: duckdb.DuckDBPyConnection, job_id: str) -> JobRow | None:
    """The job's type, name and deleted flag, if it was ever created."""
    row = tx.execute("select type, name, deleted from jobs where id = ?", [job_id]).fetchone()
    return None if row is None else (row[0], row[1], bool(row[2]))


def create(
    tx: duckdb.DuckDBPyConnection,
    *,
    stream: str,
    seq: int,
    job_id: str,
    type: str,
    name: str,
    username: str,
    group: str,
    at: datetime,
    spec: Any,
    form: dict[str, str],
    dataset_id: str | None = None,
    idempotency: tuple[str, str] = ("", ""),
) -> list[LiveEvent]:
    """Insert a job in status Initialized (a second delivery changes nothing); `idempotency`
    is the client's (key, request digest), for a retried create to find this job."""
    tx.execute(
        """insert into jobs (id, type, name, status, username, grp, created, updated, dataset_id,
             spec, form, progress, deleted, stream, status_seq, idem_key, idem_digest)
           values (?, ?, ?, 'Initialized', ?, ?, ?, ?, ?, ?, ?, 0, false, ?, ?, ?, ?)
           on conflict do nothing""",
        [
            job_id,
            type,
            name,
            username,
            group,
            at,
            at,
            dataset_id,
            dumps(spec),
            dumps(form),
            stream,
            seq,
            idempotency[0] or None,
            idempotency[1] or None,
        ],
    )
    tx.execute(
        "insert into status_history values (?, ?, 'Initialized', ?) on conflict do nothing",
        [job_id, seq, at],
    )
    return [_status_event(stream, seq, job_id, type, name, "Initialized")]


def set_status(
    tx: duckdb.DuckDBPyConnection,
    *,
    stream: str,
    seq: int,
    job_id: str,
    status: str,
    at: datetime,
    error: str | None = None,
    detail: str | None = None,
) -> list[LiveEvent]:
    """Move a job to `status` (older sequences never overwrite newer ones)."""
    found = job(tx, job_id)
    if found is None or found[2]:
        return []
    done = status == "Done"
    tx.execute(
        """update jobs set status = ?, status_seq = ?, updated = ?,
             error = coalesce(?, error), detail = ?,
             progress = case when ? then 1.0 else progress end,
             eta_seconds = case when ? then null else eta_seconds end
           where id = ? and coalesce(status_seq, 0) < ?""",
        [status, seq, at, error, detail, done, status not in RUNNING, job_id, seq],
    )
    tx.execute(
        "insert into status_history values (?, ?, ?, ?) on conflict do nothing",
        [job_id, seq, status, at],
    )
    return [_status_event(stream, seq, job_id, found[0], found[1], status)]


RUNNING = ("Initialized", "Waiting", "Running")


def set_progress(
    tx: duckdb.DuckDBPyConnection,
    *,
    stream: str,
    seq: int,
    job_id: str,
    progress: float,
    eta_seconds: float | None,
    at: datetime,
    epoch: float | None = None,
) -> list[LiveEvent]:
    """Record progress 0..1 (and epoch for models)."""
    found = job(tx, job_id)
    if found is None or found[2]:
        return []
    progress = min(1.0, max(0.0, progress))
    tx.execute(
        """update jobs set progress = ?, eta_seconds = ?, epoch = coalesce(?, epoch),
             progress_seq = ?, updated = ?
           where id = ? and coalesce(progress_seq, 0) < ?""",
        [progress, eta_seconds, epoch, seq, at, job_id, seq],
    )
    data: dict[str, Any] = {"job_id": job_id, "progress": progress, "eta_seconds": eta_seconds}
    if epoch is not None:
        data["epoch"] = epoch
    return [LiveEvent(stream=stream, seq=seq, job_id=job_id, kind="progress", data=data)]


def edit(
    tx: duckdb.DuckDBPyConnection,
    *,
    stream: str,
    seq: int,
    job_id: str,
    name: str | None,
    notes: str | None,
    at: datetime,
) -> list[LiveEvent]:
    """A new name and/or notes (None = unchanged); the saved form follows the name, as DIGITS
    did, so a clone gets it."""
    found = job(tx, job_id)
    if found is None or found[2]:
        return []
    if name is not None:
        row = tx.execute("select form from jobs where id = ?", [job_id]).fetchone()
        form = msgspec.json.decode(row[0]) if row and row[0] else {}
        key = "dataset_name" if found[0] == "dataset" else "model_name"
        if isinstance(form, dict) and key in form:
            form[key] = name
        tx.execute("update jobs set name = ?, form = ? where id = ?", [name, dumps(form), job_id])
    if notes is not None:
        tx.execute("update jobs set notes = ? where id = ?", [notes, job_id])
    tx.execute("update jobs set updated = ? where id = ?", [at, job_id])
    status = tx.execute("select status from jobs where id = ?", [job_id]).fetchone()
    data = {
        "job_id": job_id,
        "type": found[0],
        "name": name if name is not None else found[1],
        "status": status[0] if status else None,
    }
    if notes is not None:
        data["notes"] = notes
    # A status event with the same status: every page that lists the job takes the new name.
    return [LiveEvent(stream=stream, seq=seq, job_id=job_id, kind="status", data=data)]


def mark_deleted(
    tx: duckdb.DuckDBPyConnection, *, stream: str, seq: int, job_id: str, at: datetime
) -> list[LiveEvent]:
    """Flag the job deleted (the row stays so late metric events can be recognised and dropped)."""
    found = job(tx, job_id)
    if found is None or found[2]:
        return []
    tx.execute(
        "update jobs set deleted = true, deleted_seq = ?, updated = ? where id = ?",
        [seq, at, job_id],
    )
    tx.execute("delete from metrics where job_id = ?", [job_id])
    tx.execute("delete from snapshots where job_id = ?", [job_id])
    data = {"job_id": job_id, "type": found[0], "name": found[1]}
    return [LiveEvent(stream=stream, seq=seq, job_id=job_id, kind="deleted", data=data)]


def _status_event(
    stream: str, seq: int, job_id: str, type: str, name: str, status: str
) -> LiveEvent:
    data = {"job_id": job_id, "type": type, "name": name, "status": status}
    return LiveEvent(stream=stream, seq=seq, job_id=job_id, kind="status", data=data)
