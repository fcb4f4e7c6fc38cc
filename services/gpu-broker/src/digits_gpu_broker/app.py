"""Composition root of the gpu-broker: devices, lease endpoints, expiry sweep, telemetry."""

from __future__ import annotations

import functools
from typing import Final

import structlog

from digits_gpu_broker import domain, expiry, handlers
from digits_gpu_broker.handlers import Broker
from digits_gpu_broker.leases import LeaseBook
from digits_gpu_broker.nvml import Nvml, open_nvml
from digits_gpu_broker.settings import Settings
from digits_gpu_broker.telemetry import available_cpus, publish_telemetry
from digits_proto import codec, subjects
from digits_proto.gpus import DevicesDiscovered
from digits_proto.runtime import EventStore, ServiceHost, run_service, serve_endpoints

log = structlog.get_logger(__name__)


class _Auto:
    """Marker: find GPUs through NVML (tests pass a FakeNvml, or None for CPU slots)."""


AUTO: Final = _Auto()

ENDPOINTS = {
    subjects.CMD_GPUS_ACQUIRE: handlers.acquire_lease,
    subjects.CMD_GPUS_RENEW: handlers.renew_lease,
    subjects.CMD_GPUS_RELEASE: handlers.release_lease,
}


async def main(settings: Settings, nvml: Nvml | _Auto | None = AUTO) -> None:
    """Run one broker until SIGTERM."""
    host = ServiceHost(subjects.SERVICE_GPU_BROKER, settings.nats_url, settings.port)
    await serve(host, settings, nvml)


async def serve(host: ServiceHost, settings: Settings, nvml: Nvml | _Auto | None = AUTO) -> None:
    """Run the broker on `host` until `host.stop` is set (tests drive this directly)."""
    owned = isinstance(nvml, _Auto)
    found: Nvml | None = (open_nvml() if settings.use_nvml else None) if owned else nvml
    try:
        await run_service(host, functools.partial(setup, settings=settings, nvml=found))
    finally:
        if owned and found is not None:
            found.close()


async def setup(host: ServiceHost, settings: Settings, nvml: Nvml | None) -> None:
    """Announce the devices, serve the lease endpoints, start the sweep and telemetry loops."""
    cpu_count = available_cpus()
    if nvml is not None:
        devices = domain.gpu_devices(nvml.devices())
    else:
        devices = domain.cpu_devices(settings.cpu_slots, cpu_count)
    kv = await host.js.key_value(subjects.KV_LEASES)
    book = LeaseBook(kv, settings.node_id, [d.device_id for d in devices], settings.lease_ttl)
    broker = Broker(
        node_id=settings.node_id,
        devices=devices,
        book=book,
        events=EventStore(host.js, subjects.STREAM_GPUS, codec.gpu_events),
        cpu_count=cpu_count,
        metrics=host.metrics,
    )
    discovered = DevicesDiscovered(node_id=settings.node_id, devices=devices)
    await broker.events.append(broker.subject, [discovered], None)
    await expiry.seed(broker)
    await serve_endpoints(
        host.nc,
        subjects.SERVICE_GPU_BROKER,
        codec.gpu_commands,
        {subject: functools.partial(fn, broker) for subject, fn in ENDPOINTS.items()},
    )
    host.spawn(expiry.sweep_forever(broker, expiry.sweep_interval(book.ttl)), "lease-sweep")
    host.spawn(
        publish_telemetry(host.nc, settings.node_id, devices, nvml, settings.telemetry_interval),
        "telemetry",
    )
    log.info(
        "devices_offered",
        node_id=settings.node_id,
        kind="gpu" if nvml is not None else "cpu",
        devices=[d.device_id for d in devices],
        ttl=book.ttl,
    )
    host.mark_ready()
