"""What a node offers: CPU slots without NVML, telemetry, settings, the process entry point."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from digits_gpu_broker.settings import Settings
from digits_gpu_broker.telemetry import CpuProbe, available_cpus
from digits_proto import codec, subjects
from digits_proto.gpus import DevicesDiscovered, LeaseAccepted, TelemetrySampled
from digits_proto.replies import Rejected
from digits_proto.runtime import env_settings
from tests.conftest import free_port
from tests.fakes.fake_nvml import GIB, FakeGpu, FakeNvml
from tests.gpu_broker.bus import acquire, node_events


async def test_cpu_slots_without_nvml(start_broker, nc, js) -> None:
    """No GPU: the node offers DIGITS_CPU_SLOTS cpu devices, each lease a share of the cores."""
    await start_broker(None, cpu_slots=2, use_nvml=False)
    lease = await acquire(nc, "job", count=2)
    assert isinstance(lease, LeaseAccepted)
    assert [(d.device_id, d.kind) for d in lease.devices] == [("cpu0", "cpu"), ("cpu1", "cpu")]
    share = max(1, available_cpus() // 2)
    assert lease.threads == share * 2 and lease.devices[0].cores == share
    busy = await acquire(nc, "other")
    assert isinstance(busy, Rejected) and busy.code == 409
    (discovered,) = [e for e in await node_events(js) if isinstance(e, DevicesDiscovered)]
    assert [d.device_id for d in discovered.devices] == ["cpu0", "cpu1"]


async def next_telemetry(nc, node_id: str = "n1") -> TelemetrySampled:
    """The next TelemetrySampled core message of a node."""
    sub = await nc.subscribe(subjects.telemetry(node_id))
    try:
        msg = await sub.next_msg(timeout=3)
    finally:
        await sub.unsubscribe()
    return codec.telemetry.decode(msg.data)


async def test_gpu_telemetry_arrives_with_processes(start_broker, nc) -> None:
    """About once a second every GPU's memory, utilization and processes arrive on the subject."""
    gpus = [FakeGpu(memory_used=3 * GIB, processes=[(4242, 2 * GIB)]), FakeGpu(utilization=None)]
    await start_broker(FakeNvml(gpus), telemetry_interval=0.1)
    sample = await next_telemetry(nc)
    first, second = sample.samples
    assert sample.node_id == "n1" and first.device_id == "gpu0"
    assert first.memory_used == 3 * GIB and first.memory_total == 16 * GIB
    assert first.processes == [(4242, 2 * GIB)] and first.power_watts == 120.5
    assert second.utilization is None and second.temperature == 55.0
    # The host's own memory rides along beside the GPUs' (CPU utilization needs two reads).
    assert 0 < sample.host_memory_used < sample.host_memory_total
    later = await next_telemetry(nc)
    assert later.host_cpu is not None and 0 <= later.host_cpu <= 100


async def test_cpu_telemetry_reports_machine_memory(start_broker, nc) -> None:
    """CPU slots publish the machine's memory (from /proc) for each slot."""
    await start_broker(None, cpu_slots=1, use_nvml=False, telemetry_interval=0.1)
    (slot,) = (await next_telemetry(nc)).samples
    assert slot.device_id == "cpu0" and 0 < slot.memory_used < slot.memory_total


def test_cpu_probe_utilization_from_proc_stat_deltas(tmp_path: Path) -> None:
    """Utilization is the busy share of jiffies between two reads; none before the second."""
    stat, meminfo = tmp_path / "stat", tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       1000 kB\nMemFree:  10 kB\nMemAvailable:    250 kB\n")
    stat.write_text("cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 1 2 3\n")
    probe = CpuProbe(tmp_path)
    assert probe.utilization() is None
    stat.write_text("cpu  150 0 150 750 150 0 0 0 0 0\ncpu0 1 2 3\n")
    assert probe.utilization() == 50.0
    assert probe.memory() == (750 * 1024, 1000 * 1024)
    assert CpuProbe(tmp_path / "missing").memory() == (0, 0)


def test_settings_read_shared_and_own_names() -> None:
    """DIGITS_CPU_SLOTS and DIGITS_NODE_ID are shared names; the rest DIGITS_GPU_BROKER_*."""
    env = {
        "DIGITS_CPU_SLOTS": "3",
        "DIGITS_NODE_ID": "node-7",
        "DIGITS_NATS_URL": "nats://x:1",
        "DIGITS_GPU_BROKER_PORT": "8123",
        "DIGITS_GPU_BROKER_LEASE_TTL": "4.5",
        "DIGITS_GPU_BROKER_USE_NVML": "false",
    }
    s = env_settings(Settings, "gpu-broker", env, aliases={"cpu_slots": "DIGITS_CPU_SLOTS"})
    assert (s.cpu_slots, s.node_id, s.nats_url, s.port) == (3, "node-7", "nats://x:1", 8123)
    assert s.lease_ttl == 4.5 and s.use_nvml is False
    default = env_settings(Settings, "gpu-broker", {})
    assert default.cpu_slots == 1 and default.node_id and "." not in default.node_id


def test_process_starts_reports_health_and_stops_on_sigterm(nats_url: str, tmp_path) -> None:
    """`python -m digits_gpu_broker` becomes healthy on its port and exits 0 on SIGTERM."""
    port = free_port()
    env = {
        **os.environ,
        "DIGITS_NATS_URL": nats_url,
        "DIGITS_DATA_DIR": str(tmp_path),
        "DIGITS_GPU_BROKER_PORT": str(port),
        "DIGITS_GPU_BROKER_USE_NVML": "0",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "digits_gpu_broker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline, healthy = time.monotonic() + 15, False
        while time.monotonic() < deadline and not healthy:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                    healthy = r.status == 200
            except OSError:
                time.sleep(0.1)
        assert healthy, "no healthy /health"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


async def test_telemetry_failure_does_not_stop_leases(start_broker, nc) -> None:
    """A sampling error is logged and telemetry goes on (leases never depend on it)."""

    class Broken(FakeNvml):
        def sample(self, index: int):
            raise RuntimeError("GPU fell off the bus")

    await start_broker(Broken(count=1), telemetry_interval=0.05)
    await asyncio.sleep(0.2)
    assert isinstance(await acquire(nc, "job"), LeaseAccepted)
