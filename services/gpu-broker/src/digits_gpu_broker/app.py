"""Composition root of the gpu-broker: devices, lease endpoints, expiry sweep, telemetry."""

from __future__ import annotations

import functools
from typing import Any, Final

import structlog

from digits_gpu_broker import domain, expiry, handlers, queueing, routes
from digits_gpu_broker.handlers import Broker
from digits_gpu_broker.leases import LeaseBook
from digits_gpu_broker.nvml import Nvml, open_nvml
from digits_gpu_broker.settings import Settings
from digits_gpu_broker.telemetry import available_cpus, publish_telemetry
from digits_gpu_broker.waitlist import Waitlist
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


def node_endpoints(node_id: str) -> dict[str, Any]:
    """The same commands on this node's own subjects."""
    verbs = {
        "acquire": handlers.acquire_lease,
        "renew": handlers.renew_lease,
        "release": handlers.release_lease,
    }
    return {subjects.gpus_node_command(node_id, verb): fn for verb, fn in verbs.items()}


async def main(settings: Settings, nvml: Nvml | _Auto | None = AUTO) -> None:
    """Run one broker until SIGTERM."""
    host = ServiceHost(
        subjects.SERVICE_GPU_BROKER, settings.nats_url, settings.port, data_dir=settings.data_dir
    )
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
    waitlist = Waitlist(
        await host.js.key_value(subjects.KV_QUEUE),
        settings.queue_ttl,
        expiry.node_ttl(settings.lease_ttl),
    )
    await waitlist.start()
    broker = Broker(
        node_id=settings.node_id,
        devices=devices,
        book=book,
        events=EventStore(host.js, subjects.STREAM_GPUS, codec.gpu_events),
        cpu_count=cpu_count,
        waitlist=waitlist,
        user_cap=settings.max_jobs_per_user,
        metrics=host.metrics,
    )
    discovered = DevicesDiscovered(node_id=settings.node_id, devices=devices)
    await broker.events.append(broker.subject, [discovered], None)
    await expiry.seed(broker)
    await waitlist.announce_node(settings.node_id, devices)
    await queueing.watch_jobs(host.nc, broker)
    # The shared subjects serve clients that take any node's devices; the node's own subjects
    # serve its trainers (a job runs where its devices are) and renew/release its leases.
    for table in (ENDPOINTS, node_endpoints(settings.node_id)):
        await serve_endpoints(
            host.nc,
            subjects.SERVICE_GPU_BROKER,
            codec.gpu_commands,
            {subject: functools.partial(fn, broker) for subject, fn in table.items()},
        )
    console = routes.Console(broker)
    console.watch()
    host.add_routes(*routes.ROUTES, console=console)
    host.spawn(waitlist.follow(host.stop), "queue-watch")
    host.spawn(
        queueing.publish_forever(broker, settings.queue_publish_interval, host.stop),
        "queue-publish",
    )
    interval = expiry.sweep_interval(book.ttl)
    host.spawn(expiry.sweep_forever(broker, interval, host.stop), "lease-sweep")
    host.spawn(
        publish_telemetry(
            host.nc,
            settings.node_id,
            devices,
            nvml,
            settings.telemetry_interval,
            host.stop,
            on_sample=console.on_telemetry,
        ),
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
