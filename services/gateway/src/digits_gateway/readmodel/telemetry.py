"""Relay device telemetry (core NATS, not persisted) to SSE clients as `gpu` events.

`/events` clients get every node's samples; a job's stream gets only the devices the job holds.
The latest sample per node is kept for pages that render before the next one arrives; every
sample also feeds the recorded history (hardware_history).
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import msgspec
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from digits_gateway.readmodel import cluster
from digits_gateway.readmodel.db import ReadModel
from digits_gateway.readmodel.hardware_history import Recorder
from digits_gateway.readmodel.live import Hub, LiveEvent
from digits_proto import codec, subjects
from digits_proto.gpus import DeviceSample, TelemetrySampled

log = structlog.get_logger(__name__)

KIND = "gpu"
ALIVE_SECONDS = 5.0  # a node whose telemetry stopped this long ago is shown as gone


def sample_view(
    node_id: str,
    s: DeviceSample,
    holder: dict[str, Any] | None,
    host: TelemetrySampled | None = None,
) -> dict[str, Any]:
    """One device's sample as the pages read it (`host`: the message it came in, whose node
    CPU and memory ride along)."""
    return {
        "node_id": node_id,
        "device_id": s.device_id,
        "memory_used": s.memory_used,
        "memory_total": s.memory_total,
        "utilization": s.utilization,
        "temperature": s.temperature,
        "power_watts": s.power_watts,
        "processes": [{"pid": pid, "memory": used} for pid, used in s.processes],
        "job_id": holder["job_id"] if holder else None,
        "host_cpu": host.host_cpu if host else None,
        "host_memory_used": host.host_memory_used if host else 0,
        "host_memory_total": host.host_memory_total if host else 0,
        "t": round(time.time(), 1),
    }


class TelemetryRelay:
    """Subscribes to `digits.telemetry.>` and offers each sample to the live hub."""

    def __init__(self, nc: Client, hub: Hub, db: ReadModel):
        self.nc = nc
        self.hub = hub
        self.db = db
        self.latest: dict[str, tuple[TelemetrySampled, float]] = {}
        self.history = Recorder(db)  # kept per job and per device (hardware_history)
        self._sub: Subscription | None = None

    async def start(self) -> None:
        """Start relaying."""
        self._sub = await self.nc.subscribe(subjects.TELEMETRY_ALL, cb=self._on_message)

    async def stop(self) -> None:
        """Stop relaying."""
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()

    def alive(self, node_id: str) -> bool:
        """Whether the node's broker sampled recently (or has not been heard from since this
        gateway started: then its announcement stands)."""
        seen = self.latest.get(node_id)
        return seen is None or time.monotonic() - seen[1] <= ALIVE_SECONDS

    def samples(self, node_id: str) -> dict[str, DeviceSample]:
        """device_id -> the node's last sample of it ({} when none or too old)."""
        if node_id not in self.latest or not self.alive(node_id):
            return {}
        return {s.device_id: s for s in self.latest[node_id][0].samples}

    async def _on_message(self, msg: Msg) -> None:
        try:
            sampled = codec.telemetry.decode(msg.data)
        except msgspec.DecodeError:
            return
        self.latest[sampled.node_id] = (sampled, time.monotonic())
        try:
            with self.db.cursor() as cur:
                held = cluster.holders(cur)
        except Exception:  # telemetry is best effort
            log.exception("telemetry_holders_failed")
            return
        self.history.record(sampled, held)
        listeners = [s for s in self.hub.subscriptions if KIND in s.kinds and not s.dropped]
        if not listeners:
            return
        views = [
            sample_view(sampled.node_id, s, held.get((sampled.node_id, s.device_id)), sampled)
            for s in sampled.samples
        ]
        for sub in listeners:
            if sub.job_id is None:
                devices = views
            else:
                devices = [v for v in views if v["job_id"] == sub.job_id]
                if not devices:
                    continue
            data = {"node_id": sampled.node_id, "devices": devices}
            sub.offer(LiveEvent(stream="", seq=0, job_id=sub.job_id or "", kind=KIND, data=data))
