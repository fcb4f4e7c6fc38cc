"""Device telemetry kept over time: per job for its whole run, per device for the last hour.

Samples arrive about once a second per node (core NATS, never stored by the bus). Each device's
samples are averaged over a window (`STRIDE` seconds, longer for a long run) and one row per
window goes to `telemetry_history`, tagged with the job that held the device then (or none).
Rows of a job stay until the job is deleted; a job past `MAX_POINTS` rows of one device is
thinned to half and its window doubled, so a long run keeps its whole shape in few rows. Rows of
no job are dropped after `HOUR`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import structlog

from digits_gateway.readmodel.db import ReadModel
from digits_gateway.readmodel.queries import Cursor
from digits_proto.gpus import TelemetrySampled

log = structlog.get_logger(__name__)

STRIDE = 10.0  # seconds averaged into one row
MAX_POINTS = 720  # rows of one job's device before it is thinned (2 h at 10 s)
HOUR = 3600.0

Key = tuple[str, str]  # (node_id, device_id)


@dataclass
class Window:
    """The samples of one device since its last row, all while one job (or none) held it."""

    job_id: str | None
    start: float
    n: int = 0
    util: list[float] = field(default_factory=list)
    memory_used: int = 0
    memory_total: int = 0
    host_cpu: list[float] = field(default_factory=list)
    host_memory_used: int = 0
    host_memory_total: int = 0

    def add(self, s: Any, sampled: TelemetrySampled) -> None:
        self.n += 1
        if s.utilization is not None:
            self.util.append(s.utilization)
        # Memory: the peak of the window (an out-of-memory risk hides in an average).
        self.memory_used = max(self.memory_used, s.memory_used)
        self.memory_total = s.memory_total or self.memory_total
        if sampled.host_cpu is not None:
            self.host_cpu.append(sampled.host_cpu)
        self.host_memory_used = max(self.host_memory_used, sampled.host_memory_used)
        self.host_memory_total = sampled.host_memory_total or self.host_memory_total


def _mean(xs: list[float]) -> float | None:
    return round(sum(xs) / len(xs), 1) if xs else None


class Recorder:
    """Turns the relay's samples into `telemetry_history` rows (best effort, like telemetry)."""

    def __init__(self, db: ReadModel, clock: Any = time.time):
        self.db = db
        self.clock = clock
        self.windows: dict[Key, Window] = {}
        self.strides: dict[tuple[str, str, str], float] = {}  # (job, node, device) → seconds
        self.pruned = 0.0

    def record(self, sampled: TelemetrySampled, held: dict[Key, dict[str, Any]]) -> None:
        """Add one message's samples; write the windows that are full or changed holder."""
        now = self.clock()
        rows = []
        for s in sampled.samples:
            key = (sampled.node_id, s.device_id)
            holder = held.get(key)
            job_id = holder["job_id"] if holder else None
            w = self.windows.get(key)
            if w is not None and w.job_id != job_id:  # the lease changed: close the window
                rows.append(self._row(key, w, now))
                w = None
            if w is None:
                w = self.windows[key] = Window(job_id=job_id, start=now)
            w.add(s, sampled)
            if now - w.start >= self._stride(key, job_id):
                rows.append(self._row(key, w, now))
                del self.windows[key]
        if rows:
            self._write(rows, now)

    def _stride(self, key: Key, job_id: str | None) -> float:
        if job_id is None:
            return STRIDE
        return self.strides.get((job_id, *key), STRIDE)

    def _row(self, key: Key, w: Window, now: float) -> tuple[Any, ...]:
        return (
            w.job_id,
            *key,
            round(now, 3),  # as served: a client's `since` is then exactly a row's time
            _mean(w.util),
            w.memory_used,
            w.memory_total,
            _mean(w.host_cpu),
            w.host_memory_used,
            w.host_memory_total,
        )

    def _write(self, rows: list[tuple[Any, ...]], now: float) -> None:
        try:
            with self.db.transaction() as tx:
                tx.executemany(
                    "insert into telemetry_history values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
                )
                for job_id, node_id, device_id in {r[:3] for r in rows if r[0] is not None}:
                    self._thin(tx, job_id, node_id, device_id)
                if now - self.pruned >= STRIDE:
                    self.pruned = now
                    tx.execute(
                        "delete from telemetry_history where job_id is null and t < ?",
                        [now - HOUR],
                    )
        except Exception:  # telemetry is best effort: a lost row must never stop the relay
            log.exception("telemetry_history_write_failed")

    def _thin(self, tx: Cursor, job_id: str, node_id: str, device_id: str) -> None:
        """Past MAX_POINTS rows: keep every other one and average over twice as long."""
        where = "job_id = ? and node_id = ? and device_id = ?"
        args = [job_id, node_id, device_id]
        ((count,),) = tx.execute(
            f"select count(*) from telemetry_history where {where}", args
        ).fetchall()
        if count <= MAX_POINTS:
            return
        tx.execute(
            f"""delete from telemetry_history where rowid in (
                  select rowid from (
                    select rowid, row_number() over (order by t) as n
                    from telemetry_history where {where}) where n % 2 = 0)""",
            args,
        )
        key = (job_id, node_id, device_id)
        self.strides[key] = self.strides.get(key, STRIDE) * 2


COLUMNS = "node_id, device_id, t, utilization, memory_used, memory_total, host_cpu, host_memory_used, host_memory_total"


def _series(rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """Rows ordered by (node, device, t) → one column-wise series per device (uPlot's shape)."""
    out: dict[Key, dict[str, Any]] = {}
    for node_id, device_id, t, util, used, total, cpu, host_used, host_total in rows:
        d = out.get((node_id, device_id))
        if d is None:
            d = out[(node_id, device_id)] = {
                "node_id": node_id,
                "device_id": device_id,
                "t": [],
                "utilization": [],
                "memory_used": [],
                "memory_total": 0,
                "host_cpu": [],
                "host_memory_used": [],
                "host_memory_total": 0,
            }
        d["t"].append(t)
        d["utilization"].append(util)
        d["memory_used"].append(used)
        d["memory_total"] = total or d["memory_total"]
        d["host_cpu"].append(cpu)
        d["host_memory_used"].append(host_used if host_total else None)
        d["host_memory_total"] = host_total or d["host_memory_total"]
    return list(out.values())


def job_history(cur: Cursor, job_id: str, since: float = 0.0) -> list[dict[str, Any]]:
    """Every recorded row of a job after `since` (epoch seconds), one series per device."""
    rows = cur.execute(
        f"""select {COLUMNS} from telemetry_history where job_id = ? and t > ?
            order by node_id, device_id, t""",
        [job_id, since],
    ).fetchall()
    return _series(rows)


def recent(cur: Cursor, seconds: float, now: float | None = None) -> list[dict[str, Any]]:
    """Every device's rows of the last `seconds` (held or not), one series per device."""
    start = (now if now is not None else time.time()) - seconds
    rows = cur.execute(
        f"select {COLUMNS} from telemetry_history where t >= ? order by node_id, device_id, t",
        [start],
    ).fetchall()
    return _series(rows)
