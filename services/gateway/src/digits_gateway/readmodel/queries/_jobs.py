"""Jobs, their history, dataset details, snapshots, metrics and devices."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from digits_gateway.readmodel.queries._records import (
    Cursor,
    DatasetDetails,
    Job,
    MetricPoint,
    Snapshot,
    json_column,
    utc,
)

JOB_COLUMNS = (
    "id, type, name, status, username, grp, created, updated, dataset_id, spec, form, progress, "
    "eta_seconds, epoch, error, detail, deleted, stream, devices, attempt, notes, tags"
)


def _job(row: tuple[Any, ...]) -> Job:
    return Job(
        id=row[0],
        type=row[1],
        name=row[2],
        status=row[3],
        username=row[4] or "",
        group=row[5] or "",
        created=utc(row[6]),
        updated=utc(row[7]),
        dataset_id=row[8],
        spec=json_column(row[9], {}),
        form=json_column(row[10], {}),
        progress=row[11] or 0.0,
        eta_seconds=row[12],
        epoch=row[13],
        error=row[14],
        detail=row[15],
        deleted=bool(row[16]),
        stream=row[17] or "",
        devices=json_column(row[18], []),
        attempt=row[19],
        notes=row[20] or "",
        tags=json_column(row[21], []),
    )


def jobs_by_id(cur: Cursor, job_ids: Iterable[str]) -> list[Job]:
    """The live jobs among `job_ids`, oldest first (list_jobs's order), unknown ids left out."""
    ids = list(job_ids)
    if not ids:
        return []
    marks = ",".join("?" * len(ids))
    sql = (
        f"select {JOB_COLUMNS} from jobs where not deleted and id in ({marks}) order by created, id"
    )
    return [_job(r) for r in cur.execute(sql, ids).fetchall()]


def get_job(cur: Cursor, job_id: str, include_deleted: bool = False) -> Job | None:
    """A job that exists (and, unless asked, is not deleted)."""
    sql = f"select {JOB_COLUMNS} from jobs where id = ?"
    if not include_deleted:
        sql += " and not deleted"
    row = cur.execute(sql, [job_id]).fetchone()
    return None if row is None else _job(row)


def list_jobs(
    cur: Cursor, type: str | None = None, limit: int | None = None, after: str | None = None
) -> list[Job]:
    """Live jobs (of one type, or all), oldest first: all, or `limit` of them after the job
    `after` (keyset paging on (created, id): a job created meanwhile shifts no page).

    Raises KeyError when `after` names no job (a deleted one still pages: rows stay).
    """
    sql = f"select {JOB_COLUMNS} from jobs where not deleted"
    params: list[Any] = []
    if type:
        sql += " and type = ?"
        params.append(type)
    if after is not None:
        row = cur.execute("select created from jobs where id = ?", [after]).fetchone()
        if row is None:
            raise KeyError(after)
        sql += " and (created > ? or (created = ? and id > ?))"
        params += [row[0], row[0], after]
    sql += " order by created, id"
    if limit is not None:
        sql += " limit ?"
        params.append(limit)
    return [_job(r) for r in cur.execute(sql, params).fetchall()]


def status_history(cur: Cursor, job_id: str) -> list[tuple[str, datetime]]:
    """(status, when) pairs, oldest first."""
    rows = cur.execute(
        "select status, occurred from status_history where job_id = ? order by seq", [job_id]
    ).fetchall()
    return [(s, utc(at)) for s, at in rows]


def status_notes(cur: Cursor, job_id: str) -> list[str]:
    """What each status history row says beside its status (e.g. "resumed after the worker on
    node-a was lost"), "" for most; aligned with `status_history`."""
    rows = cur.execute(
        "select note from status_history where job_id = ? order by seq", [job_id]
    ).fetchall()
    return [note or "" for (note,) in rows]


def status_histories(cur: Cursor, job_ids: Iterable[str]) -> dict[str, list[tuple[str, datetime]]]:
    """The status histories of many jobs in one query (a page of 1,000 models: one, not 1,000)."""
    ids = list(job_ids)
    out: dict[str, list[tuple[str, datetime]]] = {i: [] for i in ids}
    if not ids:
        return out
    rows = cur.execute(
        "select job_id, status, occurred from status_history where job_id in "
        f"({','.join('?' * len(ids))}) order by job_id, seq",
        ids,
    ).fetchall()
    for job_id, status, at in rows:
        out[job_id].append((status, utc(at)))
    return out


DETAIL_COLUMNS = (
    "folder, labels, split_counts, warnings, splits, image_width, image_height, image_channels, "
    "encoding, mean, mean_jpg, errors, phase"
)


def _details(row: tuple[Any, ...]) -> DatasetDetails:
    return DatasetDetails(
        folder=row[0],
        labels=json_column(row[1], []),
        split_counts=json_column(row[2], {}),
        warnings=json_column(row[3], []),
        splits=json_column(row[4], []),
        image_width=row[5],
        image_height=row[6],
        image_channels=row[7],
        encoding=row[8],
        mean=json_column(row[9], None),
        mean_jpg=json_column(row[10], None),
        errors=json_column(row[11], []),
        phase=row[12],
    )


def dataset_details(cur: Cursor, dataset_id: str) -> DatasetDetails:
    """The build details of a dataset."""
    row = cur.execute(
        f"select {DETAIL_COLUMNS} from dataset_details where dataset_id = ?", [dataset_id]
    ).fetchone()
    return DatasetDetails() if row is None else _details(row)


def many_dataset_details(cur: Cursor, dataset_ids: Iterable[str]) -> dict[str, DatasetDetails]:
    """The build details of many datasets in one query (a dataset without any: defaults)."""
    ids = sorted(set(dataset_ids))
    out = {i: DatasetDetails() for i in ids}
    if not ids:
        return out
    rows = cur.execute(
        f"select dataset_id, {DETAIL_COLUMNS} from dataset_details where dataset_id in "
        f"({','.join('?' * len(ids))})",
        ids,
    ).fetchall()
    for row in rows:
        out[row[0]] = _details(row[1:])
    return out


def snapshots(cur: Cursor, job_id: str) -> list[Snapshot]:
    """A model's snapshots, by epoch."""
    rows = cur.execute(
        """select epoch, seq, symbol, params, input_shape from snapshots
           where job_id = ? order by epoch""",
        [job_id],
    ).fetchall()
    return [
        Snapshot(
            epoch=r[0],
            seq=r[1],
            symbol=json_column(r[2], {}),
            params=json_column(r[3], {}),
            input_shape=json_column(r[4], []),
        )
        for r in rows
    ]


def snapshot_epochs(cur: Cursor, job_ids: Iterable[str]) -> dict[str, list[float]]:
    """Snapshot epochs of many models at once."""
    ids = list(job_ids)
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    rows = cur.execute(
        f"select job_id, epoch from snapshots where job_id in ({marks}) order by epoch",
        ids,
    ).fetchall()
    out: dict[str, list[float]] = {i: [] for i in ids}
    for job_id, epoch in rows:
        out[job_id].append(epoch)
    return out


def metrics(cur: Cursor, job_id: str, after_seq: int = 0) -> list[MetricPoint]:
    """A model's metric points recorded after `after_seq`, in stream order."""
    rows = cur.execute(
        """select seq, epoch, iteration, phase, name, value, occurred from metrics
           where job_id = ? and seq > ? order by seq, name""",
        [job_id, after_seq],
    ).fetchall()
    points: dict[int, MetricPoint] = {}
    for seq, epoch, iteration, phase, name, value, occurred in rows:
        point = points.get(seq)
        if point is None:
            point = points[seq] = MetricPoint(
                seq=seq,
                epoch=epoch,
                iteration=iteration,
                phase=phase,
                values={},
                occurred=occurred,
            )
        point.values[name] = value
    return list(points.values())


def metric_summaries(cur: Cursor, job_ids: Iterable[str]) -> dict[str, dict[str, float]]:
    """DIGITS's home-table columns: `<name> (<phase>) last|min|max` per model."""
    ids = list(job_ids)
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    rows = cur.execute(
        f"""select job_id, phase, name, arg_max(value, iteration), min(value), max(value)
            from metrics where job_id in ({marks}) and isfinite(value)
            group by job_id, phase, name""",
        ids,
    ).fetchall()
    out: dict[str, dict[str, float]] = {i: {} for i in ids}
    for job_id, phase, name, last, low, high in rows:
        out[job_id].update(
            {
                f"{name} ({phase}) last": last,
                f"{name} ({phase}) min": low,
                f"{name} ({phase}) max": high,
            }
        )
    return out


def dependents(cur: Cursor, dataset_id: str) -> list[tuple[str, str]]:
    """(id, name) of the live models built on a dataset."""
    return cur.execute(
        """select id, name from jobs where type = 'model' and not deleted and dataset_id = ?
           order by id""",
        [dataset_id],
    ).fetchall()


def devices(cur: Cursor) -> list[dict[str, Any]]:
    """Every device the brokers offer, with the job holding it (if any)."""
    rows = cur.execute("select node_id, info from devices order by node_id, kind, idx").fetchall()
    held: dict[tuple[str, str], str] = {}  # device ids repeat across nodes
    for node_id, job_id, ids in cur.execute(
        "select node_id, job_id, device_ids from leases where state = 'active'"
    ).fetchall():
        for device_id in json_column(ids, []):
            held[(node_id, device_id)] = job_id
    out = []
    for node_id, info in rows:
        device = json_column(info, {})
        device["node_id"] = node_id
        device["job_id"] = held.get((node_id, device.get("device_id", "")))
        out.append(device)
    return out
