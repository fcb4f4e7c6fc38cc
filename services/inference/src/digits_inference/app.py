"""Composition root of the inference service: endpoints on NATS, the predictor thread."""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path

import structlog

from digits_inference import handlers, jobs, routes, tickets
from digits_inference.archive import Limits
from digits_inference.placement import Placement
from digits_inference.predictor import Predictor
from digits_inference.registry import Registry
from digits_inference.retention import Sweeper
from digits_inference.settings import Settings
from digits_proto import codec, subjects
from digits_proto.runtime import (
    GiveUp,
    ServiceHost,
    consume_tickets,
    run_service,
    serve_endpoints,
)

log = structlog.get_logger(__name__)

REPLY_HEADROOM = 64 * 1024  # bytes of a message kept for the reply around an inline result


async def main(settings: Settings, host: ServiceHost | None = None) -> None:
    """Run the service until SIGTERM (or until `host.stop` is set, as tests do)."""
    host = host or ServiceHost(
        subjects.SERVICE_INFERENCE, settings.nats_url, settings.port, data_dir=settings.data_dir
    )
    predictor = Predictor(
        settings.net_cache_size,
        on_load=lambda: host.metrics.inc("nets_loaded"),
        cache_bytes=settings.cache_mb * 1024 * 1024,
        decode_threads=settings.decode_workers,
    )
    try:
        await run_service(host, functools.partial(setup, settings=settings, predictor=predictor))
    finally:
        predictor.close()


async def setup(host: ServiceHost, *, settings: Settings, predictor: Predictor) -> None:
    """Register the endpoints, then report ready."""
    predictor.placement = Placement(
        host.nc,
        enabled=settings.use_gpus,
        node_id=settings.node_id,
        idle_release=settings.lease_idle,
        on_release=predictor.forget_context,
    )
    host.spawn(_release_on_stop(host, predictor.placement), name="placement")
    deps = handlers.Deps(
        js=host.js,
        registry=Registry(host.js),
        predictor=predictor,
        metrics=host.metrics,
        cache_dir=Path(settings.cache_dir),
        max_image_bytes=settings.max_image_bytes,
        max_pixels=settings.max_pixels,
        data_roots=tuple(settings.data_roots),
        max_list_bytes=settings.max_list_bytes,
        batch_size=settings.batch_size,
        max_archive_bytes=settings.max_archive_bytes,
        archive_limits=Limits(
            max_members=settings.max_archive_members,
            max_expanded=settings.max_expanded_bytes,
            max_image=settings.max_image_bytes,
            min_free=settings.min_free_bytes,
        ),
        # The server's message limit, less room for the reply's envelope and headers.
        max_reply_bytes=max(0, host.nc.max_payload - REPLY_HEADROOM),
        checkpoint_every=settings.checkpoint_every,
    )
    host.add_routes(*routes.ROUTES, deps=deps)
    routes.watch_cache(deps, host.metrics)
    sweeper = Sweeper(host.js, deps.registry, settings.retention_hours * 3600)
    host.spawn(sweeper.run_forever(settings.sweep_interval, host.stop), name="retention")
    endpoints = {
        subjects.CMD_INFERENCE_CLASSIFY_ONE: functools.partial(handlers.classify_one, deps),
        subjects.CMD_INFERENCE_EXPORT: functools.partial(handlers.export_model, deps),
        subjects.CMD_INFERENCE_CLASSIFY_MANY: functools.partial(jobs.classify_many, deps),
    }
    await serve_endpoints(host.nc, subjects.SERVICE_INFERENCE, codec.inference_commands, endpoints)
    consuming = asyncio.Event()
    host.spawn(
        consume_tickets(
            host.js,
            subjects.STREAM_WORK,
            subjects.WORK_CLASSIFY_MANY,
            subjects.CONSUMER_CLASSIFIER,
            functools.partial(tickets.run_ticket, deps),
            host.stop,
            ack_wait=settings.ack_wait,
            ready=consuming,
            # The job never NAKs to wait: JetStream's delivery count is the count of lost workers.
            give_up=GiveUp(settings.max_deliver, functools.partial(tickets.give_up, deps)),
        ),
        name="classifier",
    )
    await consuming.wait()
    await host.nc.flush()  # the server knows our subscriptions before anyone is told we are ready
    host.mark_ready()


async def _release_on_stop(host: ServiceHost, placement: Placement) -> None:
    """Give a leased GPU back when the service stops (else it expires after its TTL)."""
    try:
        await host.stop.wait()
    finally:
        await placement.close()
