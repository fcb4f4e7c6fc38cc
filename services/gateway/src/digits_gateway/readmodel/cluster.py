"""Read the cluster from DuckDB: nodes and their devices, who holds each, and the queue."""

from __future__ import annotations

from typing import Any

from digits_gateway.readmodel.queries import Cursor
from digits_gateway.readmodel.queries._records import json_column


def holders(cur: Cursor) -> dict[tuple[str, str], dict[str, Any]]:
    """(node_id, device_id) -> the job holding it now: {job_id, name, lease_id, since}."""
    rows = cur.execute(
        """select l.node_id, l.device_ids, l.job_id, l.lease_id, l.granted_at, j.name
           from leases l left join jobs j on j.id = l.job_id
           where l.state = 'active'"""
    ).fetchall()
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for node_id, ids, job_id, lease_id, granted, name in rows:
        for device_id in json_column(ids, []):
            out[(node_id, device_id)] = {
                "job_id": job_id,
                "name": name or job_id,
                "lease_id": lease_id,
                "since": granted.timestamp() if granted else None,
            }
    return out


def nodes(cur: Cursor) -> dict[str, list[dict[str, Any]]]:
    """node_id -> its devices as last announced, each with `holder` (or None)."""
    held = holders(cur)
    out: dict[str, list[dict[str, Any]]] = {}
    for node_id, info in cur.execute(
        "select node_id, info from devices order by node_id, kind, idx"
    ).fetchall():
        device = json_column(info, {})
        device["node_id"] = node_id
        device["holder"] = held.get((node_id, device.get("device_id", "")))
        out.setdefault(node_id, []).append(device)
    return out


def job_devices(cur: Cursor, job_id: str) -> list[tuple[str, str]]:
    """The (node_id, device_id) pairs a job holds right now."""
    rows = cur.execute(
        "select node_id, device_ids from leases where state = 'active' and job_id = ?", [job_id]
    ).fetchall()
    return [(node_id, d) for node_id, ids in rows for d in json_column(ids, [])]


def queue(cur: Cursor) -> list[dict[str, Any]]:
    """Jobs waiting: the device queue in serving order, then jobs waiting for their dataset."""
    rows = cur.execute(
        """select q.job_id, q.position, q.priority, q.username, q.count, q.device_indexes,
                  q.node_id, q.reason, j.name, j.status
           from queue q left join jobs j on j.id = q.job_id
           where j.id is null or (not j.deleted and j.status = 'Waiting')
           order by q.position"""
    ).fetchall()
    out = [
        {
            "job_id": job_id,
            "name": name or job_id,
            "status": status or "Waiting",
            "position": position,
            "priority": priority,
            "username": user,
            "count": count,
            "device_indexes": json_column(indexes, []),
            "node_id": node_id,
            "waiting_for": reason,
        }
        for job_id, position, priority, user, count, indexes, node_id, reason, name, status in rows
    ]
    queued = {e["job_id"] for e in out}
    for job_id, name, user, detail, spec in cur.execute(
        """select id, name, username, detail, spec from jobs
           where type = 'model' and status = 'Waiting' and not deleted order by created, id"""
    ).fetchall():
        if job_id in queued:
            continue
        spec = json_column(spec, {})
        out.append(
            {
                "job_id": job_id,
                "name": name,
                "status": "Waiting",
                "position": None,
                "priority": spec.get("priority", 0),
                "username": user or "",
                "count": spec.get("select_gpu_count", 1),
                "device_indexes": spec.get("select_gpus", []),
                "node_id": "",
                "waiting_for": detail or "waiting",
            }
        )
    return out
