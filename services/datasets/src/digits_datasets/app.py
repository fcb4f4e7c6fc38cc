"""Composition root: endpoints, the build worker and the models index on one ServiceHost."""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path

from digits_datasets import handlers, purge, routes, worker
from digits_datasets.dependents import ModelIndex
from digits_datasets.explore import Explorer
from digits_datasets.pool import BuildPool
from digits_datasets.settings import Settings
from digits_proto import codec, subjects
from digits_proto.datasets import DatasetEvent
from digits_proto.runtime import (
    EventStore,
    GiveUp,
    ServiceHost,
    consume_tickets,
    run_service,
    serve_endpoints,
    storage_limits,
)

COMMAND_HANDLERS = {
    subjects.CMD_DATASETS_CREATE: handlers.create_dataset,
    subjects.CMD_DATASETS_ABORT: handlers.abort_dataset,
    subjects.CMD_DATASETS_DELETE: handlers.delete_dataset,
    subjects.CMD_DATASETS_RESIZE_EXAMPLE: handlers.resize_example,
    subjects.CMD_DATASETS_EXPLORE: handlers.explore_dataset,
    subjects.CMD_DATASETS_RECORD: handlers.get_record,
    subjects.CMD_DATASETS_EDIT: handlers.edit_dataset,
}


async def setup(host: ServiceHost, settings: Settings, pool: BuildPool) -> None:
    """Follow the models stream, serve the commands, consume build tickets, then mark ready."""
    store: EventStore[DatasetEvent] = EventStore(
        host.js, subjects.STREAM_DATASETS, codec.dataset_events
    )
    models = ModelIndex()
    await models.follow(host.js)
    explorer = Explorer(host.js, store, Path(settings.data_dir) / "datasets" / "cache")
    limits = storage_limits()
    deps = handlers.Deps(
        js=host.js,
        store=store,
        settings=settings,
        models=models,
        explorer=explorer,
        retention_days=limits.retention_days,
    )
    host.spawn(purge.keep_purging(host.js, store, limits, host.stop), name="purge")
    await serve_endpoints(
        host.nc,
        subjects.SERVICE_DATASETS,
        codec.dataset_commands,
        {subject: functools.partial(fn, deps) for subject, fn in COMMAND_HANDLERS.items()},
    )
    build_deps = worker.BuildDeps(nc=host.nc, js=host.js, store=store, settings=settings, pool=pool)
    host.add_routes(*routes.ROUTES, inflight=build_deps.inflight, store=store)
    host.metrics.describe("builds_running", "Dataset builds running in this process")
    host.metrics.on_render(
        lambda: host.metrics.set("builds_running", len(build_deps.inflight.builds))
    )
    consuming = asyncio.Event()
    host.spawn(
        consume_tickets(
            host.js,
            subjects.STREAM_WORK,
            subjects.WORK_BUILD_DATASET,
            subjects.CONSUMER_DATASET_BUILDER,
            functools.partial(worker.build_dataset, build_deps),
            host.stop,
            ack_wait=settings.ack_wait,
            ready=consuming,
            # Builds never NAK to wait: JetStream's delivery count is the count of lost workers.
            give_up=GiveUp(
                settings.max_deliver, functools.partial(worker.give_up_build, build_deps)
            ),
        ),
        name="dataset-builder",
    )
    await consuming.wait()
    host.mark_ready()


async def main(settings: Settings, host: ServiceHost | None = None) -> None:
    """Run the service until SIGTERM (or `host.stop`); tests pass their own `host`."""
    host = host or ServiceHost(subjects.SERVICE_DATASETS, settings.nats_url, settings.port)
    # The build workers start now, while the service connects, and serve every build.
    pool = BuildPool(settings.build_workers)
    pool.start()
    try:
        await run_service(host, functools.partial(setup, settings=settings, pool=pool))
    finally:
        await asyncio.to_thread(pool.shutdown)
