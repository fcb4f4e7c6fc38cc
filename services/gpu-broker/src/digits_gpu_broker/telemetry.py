"""Device telemetry about once a second on a core (not persisted) subject."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import structlog
from nats.aio.client import Client

from digits_gpu_broker.nvml import Nvml
from digits_proto import codec, subjects
from digits_proto.gpus import Device, DeviceSample, TelemetrySampled

log = structlog.get_logger(__name__)


def available_cpus() -> int:
    """Cores this process may run on (affinity/cgroup-pinned sets count, not the whole host)."""
    with contextlib.suppress(AttributeError, OSError):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def gpu_samples(nvml: Nvml, devices: Sequence[Device]) -> list[DeviceSample]:
    """One sample per GPU from NVML (blocking: run it in a thread)."""
    out = []
    for d in devices:
        s = nvml.sample(d.index)
        out.append(
            DeviceSample(
                device_id=d.device_id,
                memory_used=s.memory_used or 0,
                memory_total=s.memory_total or d.memory_total,
                utilization=s.utilization,
                temperature=s.temperature,
                power_watts=s.power_watts,
                processes=list(s.processes),
            )
        )
    return out


class CpuProbe:
    """Machine memory and CPU utilization from /proc (zeros/None where /proc is missing)."""

    def __init__(self, proc: Path = Path("/proc")):
        self.proc = proc
        self._last: tuple[int, int] | None = None

    def memory(self) -> tuple[int, int]:
        """(used, total) bytes: MemTotal - MemAvailable, MemTotal."""
        info: dict[str, int] = {}
        with contextlib.suppress(OSError):
            for line in (self.proc / "meminfo").read_text().splitlines():
                name, _, rest = line.partition(":")
                info[name] = int(rest.split()[0]) * 1024 if rest.split() else 0
        total = info.get("MemTotal", 0)
        return max(0, total - info.get("MemAvailable", total)), total

    def utilization(self) -> float | None:
        """Percent of all cores busy since the previous call (None on the first call)."""
        try:
            fields = [
                int(x) for x in (self.proc / "stat").read_text().split("\n", 1)[0].split()[1:]
            ]
        except (OSError, ValueError):
            return None
        idle, total = fields[3] + (fields[4] if len(fields) > 4 else 0), sum(fields)
        last, self._last = self._last, (idle, total)
        if last is None or total <= last[1]:
            return None
        return round(100.0 * (1 - (idle - last[0]) / (total - last[1])), 1)

    def samples(
        self, devices: Sequence[Device], host: tuple[int, int, float | None] | None = None
    ) -> list[DeviceSample]:
        """The same machine-wide figures for every CPU slot (`host`: (used, total, util)
        already read this tick; utilization is a difference, read once per tick)."""
        used, total, util = host if host is not None else (*self.memory(), self.utilization())
        return [
            DeviceSample(
                device_id=d.device_id, memory_used=used, memory_total=total, utilization=util
            )
            for d in devices
        ]


async def publish_telemetry(
    nc: Client,
    node_id: str,
    devices: Sequence[Device],
    nvml: Nvml | None,
    interval: float,
    stop: asyncio.Event | None = None,
    on_sample: Callable[[list[DeviceSample]], None] | None = None,
) -> None:
    """Sample every device and core-publish a TelemetrySampled until `stop` is set
    (`on_sample` keeps the latest for the HTTP routes)."""
    probe = CpuProbe()
    subject = subjects.telemetry(node_id)
    stop = stop or asyncio.Event()
    while not stop.is_set():
        try:
            # The host's CPU and memory ride along (two small /proc reads): charted per job
            # beside its devices.
            used, total = probe.memory()
            util = probe.utilization()
            if nvml is not None:
                samples = await asyncio.to_thread(gpu_samples, nvml, devices)
            else:
                samples = probe.samples(devices, (used, total, util))
            if on_sample is not None:
                on_sample(samples)
            message = TelemetrySampled(
                node_id=node_id,
                samples=samples,
                host_cpu=util,
                host_memory_used=used,
                host_memory_total=total,
            )
            await nc.publish(subject, codec.encode(message))
        except Exception:  # telemetry is best effort; leases must keep working
            log.exception("telemetry_failed", node_id=node_id)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
