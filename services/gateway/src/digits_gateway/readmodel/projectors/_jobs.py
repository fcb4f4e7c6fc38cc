"""Row changes every job projector shares: create, status, progress, delete (all idempotent).

A batch's job rows live in a `Jobs` (one read, one upsert per table at `flush`): each event
changes them in memory as its own statement used to, so the result is the same row for row.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import duckdb
import msgspec

from digits_gateway.readmodel.live import LiveEvent
from digits_gateway.readmodel.projectors._rows import Row, Table, delete, upsert

RUNNING = ("Initialized", "Waiting", "Running")
JobRow = tuple[str, str, bool]  # type, name, deleted


def dumps(value: Any) -> str:
    """JSON text for a column."""
    return msgspec.json.encode(value).decode()


class Jobs:
    """The `jobs`, `status_history` and `snapshots` rows one batch touches."""

    def __init__(self, tx: duckdb.DuckDBPyConnection, ids: Iterable[str]):
        self.tx = tx
        self.rows = Table(tx, "jobs", "id")
        self.rows.load(ids)
        self.history: dict[tuple[str, int], tuple[Any, ...]] = {}
        self.snapshots: dict[tuple[str, float], tuple[Any, ...]] = {}
        self.dropped_snapshots: set[tuple[str, float]] = set()
        self._details: Table | None = None
        self._early: Table | None = None
        self.early_taken: set[str] = set()

    @property
    def details(self) -> Table:
        """`dataset_details` rows (dataset batches only), read on first use."""
        if self._details is None:
            self._details = Table(self.tx, "dataset_details", "dataset_id")
            self._details.load(k for k, _ in self.rows.cached())
        return self._details

    @property
    def early(self) -> Table:
        """`early_progress` rows: progress projected before its job's creation (on a rebuild
        the progress stream may run ahead of the job's own), read on first use."""
        if self._early is None:
            self._early = Table(self.tx, "early_progress", "job_id")
            self._early.load(k for k, _ in self.rows.cached())
        return self._early

    def live(self, job_id: str) -> Row | None:
        """The job's row unless it was never created or is deleted."""
        row = self.rows.get(job_id)
        return None if row is None or row["deleted"] else row

    def flush(self) -> None:
        self.rows.flush()
        if self._details is not None:
            self._details.flush()
        if self._early is not None:
            self._early.flush()
        delete(self.tx, "early_progress", ["job_id"], [(k,) for k in sorted(self.early_taken)])
        self.early_taken.clear()
        upsert(self.tx, "status_history", list(self.history.values()))
        delete(self.tx, "snapshots", ["job_id", "epoch"], sorted(self.dropped_snapshots))
        upsert(self.tx, "snapshots", list(self.snapshots.values()))
        self.history.clear()
        self.snapshots.clear()
        self.dropped_snapshots.clear()

    def save_snapshot(self, row: tuple[Any, ...]) -> None:
        key = (row[0], row[1])
        self.dropped_snapshots.discard(key)
        self.snapshots[key] = row

    def drop_snapshot(self, job_id: str, epoch: float) -> None:
        self.snapshots.pop((job_id, epoch), None)
        self.dropped_snapshots.add((job_id, epoch))


def job(jobs: Jobs, job_id: str) -> JobRow | None:
    """The job's type, name and deleted flag, if it was ever created."""
    row = jobs.rows.get(job_id)
    return None if row is None else (row["type"], row["name"], bool(row["deleted"]))


def create(
    jobs: Jobs,
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
    early_progress: bool = True,
) -> list[LiveEvent]:
    """Insert a job in status Initialized (a second delivery changes nothing); `idempotency`
    is the client's (key, request digest), for a retried create to find this job. Progress
    projected before the job existed is taken over (`early_progress`), else dropped."""
    if jobs.rows.get(job_id) is None:
        jobs.rows.put(
            {
                "id": job_id,
                "type": type,
                "name": name,
                "status": "Initialized",
                "username": username,
                "grp": group,
                "created": at,
                "updated": at,
                "dataset_id": dataset_id,
                "spec": dumps(spec),
                "form": dumps(form),
                "progress": 0.0,
                "deleted": False,
                "stream": stream,
                "status_seq": seq,
                "idem_key": idempotency[0] or None,
                "idem_digest": idempotency[1] or None,
                **_take_early_progress(jobs, job_id, early_progress),
            }
        )
    jobs.history.setdefault((job_id, seq), (job_id, seq, "Initialized", at, None))
    return [_status_event(stream, seq, job_id, type, name, "Initialized")]


def _take_early_progress(jobs: Jobs, job_id: str, take: bool) -> Row:
    """The progress columns a job starts with: what its progress stream said before it was
    created, if anything and `take` (the record is dropped either way)."""
    early = jobs.early.get(job_id)
    if early is None:
        return {}
    jobs.early_taken.add(job_id)
    if not take:
        return {}
    return {
        "progress": early["progress"],
        "eta_seconds": early["eta_seconds"],
        "epoch": early["epoch"],
        "progress_seq": early["seq"],
    }


def set_status(
    jobs: Jobs,
    *,
    stream: str,
    seq: int,
    job_id: str,
    status: str,
    at: datetime,
    error: str | None = None,
    detail: str | None = None,
    note: str | None = None,
    history: bool = True,
) -> list[LiveEvent]:
    """Move a job to `status` (older sequences never overwrite newer ones); a status history
    row (unless not `history`) says when, with `note` beside it."""
    row = jobs.live(job_id)
    if row is None:
        return []
    if (row["status_seq"] or 0) < seq:
        row = {**row, "status": status, "status_seq": seq, "updated": at, "detail": detail}
        if error is not None:
            row["error"] = error
        if status == "Done":
            row["progress"] = 1.0
        if status not in RUNNING:
            row["eta_seconds"] = None
        jobs.rows.put(row)
    if history:
        jobs.history.setdefault((job_id, seq), (job_id, seq, status, at, note))
    event = _status_event(stream, seq, job_id, row["type"], row["name"], status)
    if note:
        event.data["note"] = note
    return [event]


def set_progress(
    jobs: Jobs,
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
    row = jobs.live(job_id)
    if row is None:
        return []
    progress = min(1.0, max(0.0, progress))
    if (row["progress_seq"] or 0) < seq:
        jobs.rows.put(
            {
                **row,
                "progress": progress,
                "eta_seconds": eta_seconds,
                "epoch": row["epoch"] if epoch is None else epoch,
                "progress_seq": seq,
                "updated": at,
            }
        )
    data: dict[str, Any] = {"job_id": job_id, "progress": progress, "eta_seconds": eta_seconds}
    if epoch is not None:
        data["epoch"] = epoch
    return [LiveEvent(stream=stream, seq=seq, job_id=job_id, kind="progress", data=data)]


def edit(
    jobs: Jobs,
    *,
    stream: str,
    seq: int,
    job_id: str,
    name: str | None,
    notes: str | None,
    at: datetime,
    tags: list[str] | None = None,
) -> list[LiveEvent]:
    """A new name, notes and/or tags (None = unchanged); the saved form follows the name, as
    DIGITS did, so a clone gets it."""
    row = jobs.live(job_id)
    if row is None:
        return []
    row = {**row, "updated": at}
    if name is not None:
        form = msgspec.json.decode(row["form"]) if row["form"] else {}
        key = "dataset_name" if row["type"] == "dataset" else "model_name"
        if isinstance(form, dict) and key in form:
            form[key] = name
        row["name"], row["form"] = name, dumps(form)
    if notes is not None:
        row["notes"] = notes
    if tags is not None:
        row["tags"] = dumps(tags)
    jobs.rows.put(row)
    data = {"job_id": job_id, "type": row["type"], "name": row["name"], "status": row["status"]}
    if notes is not None:
        data["notes"] = notes
    if tags is not None:
        data["tags"] = tags
    # A status event with the same status: every page that lists the job takes the new name.
    return [LiveEvent(stream=stream, seq=seq, job_id=job_id, kind="status", data=data)]


def mark_deleted(
    jobs: Jobs, *, stream: str, seq: int, job_id: str, at: datetime
) -> list[LiveEvent]:
    """Flag the job deleted (the row stays so late metric events can be recognised and dropped)."""
    row = jobs.live(job_id)
    if row is None:
        return []
    jobs.rows.put({**row, "deleted": True, "deleted_seq": seq, "updated": at})
    # Rare: plain statements; the batch's own pending snapshots of the job go too.
    jobs.tx.execute("delete from metrics where job_id = ?", [job_id])
    jobs.tx.execute("delete from snapshots where job_id = ?", [job_id])
    jobs.tx.execute("delete from telemetry_history where job_id = ?", [job_id])
    for key in [k for k in jobs.snapshots if k[0] == job_id]:
        del jobs.snapshots[key]
    data = {"job_id": job_id, "type": row["type"], "name": row["name"]}
    return [LiveEvent(stream=stream, seq=seq, job_id=job_id, kind="deleted", data=data)]


def _status_event(
    stream: str, seq: int, job_id: str, type: str, name: str, status: str
) -> LiveEvent:
    data = {"job_id": job_id, "type": type, "name": name, "status": status}
    return LiveEvent(stream=stream, seq=seq, job_id=job_id, kind="status", data=data)
