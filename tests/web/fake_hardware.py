"""Fake routes of the stand-in gateway for device telemetry over time (see fake_site.build_app).

The recorded series in the real JSON shape (readmodel/hardware_history): MODEL's run so far and
every device's last hour. Three more models: HW_DONE, ended, its run recorded; HW_BARE, ended with
no telemetry at all; HW_LIVE, running on gpu0, whose stream a test drives
(`POST /test/hardware/events`) and whose lease a test ends (`POST /test/hardware/release`).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from typing import Any

from litestar import get, post
from litestar.exceptions import ValidationException
from litestar.response import ServerSentEvent
from litestar.response.sse import ServerSentEventMessage

from tests.web import fake_cluster, fake_site

GIB = fake_cluster.GIB
HW_DONE = "20261127-150000-d0e1"
HW_BARE = "20261127-150500-b0b0"
HW_LIVE = "20261127-151000-1ive"
NOW = fake_site.NOW
STREAM_IDLE_S = 30.0


def _model(job_id: str, name: str, status: str, started: float) -> dict[str, Any]:
    job = {**fake_site.MODELS[fake_site.MODEL], "id": job_id, "job id": job_id, "name": name}
    job.update(status=status, snapshots=[1, 2, 3, 4, 5] if status == "Done" else [])
    job["progress"] = 1.0 if status == "Done" else 0.3
    job["creation time"] = started
    job["status_history"] = [["Initialized", started], ["Running", started + 2]]
    if status == "Done":
        job["status_history"].append(["Done", started + 900])
    return job


fake_site.MODELS[HW_DONE] = _model(HW_DONE, "lenet-recorded", "Done", NOW - 7200)
fake_site.MODELS[HW_BARE] = _model(HW_BARE, "lenet-cpu-only", "Done", NOW - 3600)
fake_site.MODELS[HW_LIVE] = _model(HW_LIVE, "lenet-live-hardware", "Running", NOW - 120)


def series(
    node_id: str, device_id: str, name: str, start: float, n: int, step: float = 10.0
) -> dict[str, Any]:
    """`n` rows `step` apart from `start`: a warm-up, then a busy plateau with some noise."""
    t = [round(start + i * step, 3) for i in range(n)]
    util = [
        round(min(99.0, 15 + 80 * (1 - math.exp(-i / 4)) + 3 * math.sin(i)), 1) for i in range(n)
    ]
    mem = [int((2 + 58 * (1 - math.exp(-i / 3))) * GIB) for i in range(n)]
    return {
        "node_id": node_id,
        "device_id": device_id,
        "name": name,
        "kind": "gpu",
        "t": t,
        "utilization": util,
        "memory_used": mem,
        "memory_total": 80 * GIB,
        "host_cpu": [round(20 + 15 * (1 - math.exp(-i / 5)), 1) for i in range(n)],
        "host_memory_used": [int((30 + 8 * (1 - math.exp(-i / 6))) * GIB) for i in range(n)],
        "host_memory_total": 128 * GIB,
    }


H100 = "NVIDIA H100 80GB HBM3"
# job_id → its devices' recorded series (HW_BARE, and any other job: none).
HISTORY: dict[str, list[dict[str, Any]]] = {
    fake_site.MODEL: [series("gpu-node-1", "gpu0", H100, NOW - 590, 58)],
    HW_DONE: [series("gpu-node-1", "gpu1", H100, NOW - 7198, 90)],
    HW_LIVE: [series("gpu-node-1", "gpu0", H100, NOW - 100, 6)],
}
LIVE_RECORDED = 6  # HW_LIVE's rows at the start (a test adds the rest)


def _hour() -> list[dict[str, Any]]:
    """gpu0 busy for the hour, gpu1 busy for half of it; gpu-node-2 (gone) recorded nothing."""
    busy = series("gpu-node-1", "gpu0", H100, NOW - 3590, 359)
    idle = series("gpu-node-1", "gpu1", H100, NOW - 3590, 359)
    busy_from, busy_to = 150, 330  # a job held it for half an hour, then released it
    idle["utilization"] = [
        u if busy_from <= i < busy_to else 0.0 for i, u in enumerate(idle["utilization"])
    ]
    idle["memory_used"] = [
        m if busy_from <= i < busy_to else GIB // 2 for i, m in enumerate(idle["memory_used"])
    ]
    return [busy, idle]


@get("/api/v1/jobs/{job_id:str}/hardware/history", sync_to_thread=False)
def job_history(job_id: str, since: float = 0.0) -> dict[str, Any]:
    """A job's recorded series (rows after `since`)."""
    if since < 0:
        raise ValidationException(extra=[{"key": "since", "message": "must be >= 0"}])
    devices = []
    for d in HISTORY.get(job_id, []):
        keep = [i for i, t in enumerate(d["t"]) if t > since]
        devices.append(
            {k: [v[i] for i in keep] if isinstance(v, list) else v for k, v in d.items()}
        )
    return {"job_id": job_id, "stride_seconds": 10.0, "devices": devices}


@get("/api/v1/cluster/history", sync_to_thread=False)
def cluster_history(minutes: int = 60) -> dict[str, Any]:
    """Every device's last hour."""
    if not 1 <= minutes <= 60:
        raise ValidationException(extra=[{"key": "minutes", "message": "1 to 60"}])
    return {"now": NOW, "minutes": minutes, "devices": _hour()}


_listeners: list[asyncio.Queue[tuple[str, dict[str, Any]]]] = []


def _live_stream() -> AsyncIterator[ServerSentEventMessage]:
    history = {"status": "Running", "progress": 0.3, "eta_seconds": 300, "epoch": 1.5}
    first = ("history", {**history, "metrics": [], "snapshots": []})
    return fake_site.pushed_stream(first, _listeners, STREAM_IDLE_S)


@get(f"/jobs/{HW_LIVE}/events", sync_to_thread=False)
def live_events() -> ServerSentEvent:
    """HW_LIVE's stream: its history, then what the test pushes."""
    return ServerSentEvent(_live_stream())


@post("/test/hardware/events", status_code=200)
async def push_event(data: dict[str, Any]) -> dict[str, int]:
    """Hand `{"kind", "payload"}` to every open HW_LIVE stream; says how many got it."""
    for queue in _listeners:
        queue.put_nowait((str(data["kind"]), {"job_id": HW_LIVE, **data["payload"]}))
    return {"listeners": len(_listeners)}


@post("/test/hardware/release", status_code=200)
async def release(data: dict[str, Any]) -> dict[str, int]:
    """HW_LIVE's lease ends: it holds nothing, and its recorded series grows to `rows`
    (the last row after `until`, as the gateway's closing window is)."""
    fake_cluster.HOLDING.pop(HW_LIVE, None)
    d = series("gpu-node-1", "gpu0", H100, NOW - 100, int(data["rows"]))
    d["t"][-1] = float(data["until"]) + 1
    HISTORY[HW_LIVE] = [d]
    return {"rows": len(d["t"])}


def reset() -> None:
    """HW_LIVE as at the start: holding gpu0, six rows recorded."""
    fake_cluster.HOLDING[HW_LIVE] = fake_cluster.HELD
    HISTORY[HW_LIVE] = [series("gpu-node-1", "gpu0", H100, NOW - 100, LIVE_RECORDED)]


reset()
ROUTES: list[Any] = [job_history, cluster_history, live_events, push_event, release]
