"""Composition root of the trainer: endpoints for create/abort/delete, the ticket worker."""

from __future__ import annotations

import asyncio
import os
import uuid
from functools import partial
from pathlib import Path

from digits_proto import codec, subjects
from digits_proto.runtime import (
    ServiceHost,
    consume_tickets,
    run_service,
    serve_endpoints,
    storage_limits,
)
from digits_trainer.confine import Confiner
from digits_trainer.handlers import command_handlers
from digits_trainer.importer import Importer
from digits_trainer.leases import Leases
from digits_trainer.node import Node
from digits_trainer.places import QueuePlaces
from digits_trainer.pretrained import Imports
from digits_trainer.purge import keep_purging
from digits_trainer.routes import ROUTES
from digits_trainer.sandbox import Sandbox, Turns
from digits_trainer.settings import Settings, sandbox_limits
from digits_trainer.spares import Spares
from digits_trainer.store import Store
from digits_trainer.worker import Worker, train_model

GAUGES = {
    "jobs_running": "Training jobs running on this node",
    "images_per_second": "Training speed of the jobs running on this node, together",
    "draining": "1 while this node is drained (POST /drain): it takes no ticket",
}


async def main(settings: Settings, host: ServiceHost | None = None) -> None:
    """Run the trainer until SIGTERM (or until `host.stop` is set, as tests do)."""
    host = host or ServiceHost(subjects.SERVICE_TRAINER, settings.nats_url, settings.port)
    await run_service(host, partial(setup, settings=settings))


async def setup(host: ServiceHost, settings: Settings) -> None:
    """Serve the commands, start the worker, then report ready."""
    store = Store.on(host.js)
    data = Path(settings.data_dir)
    confiner = Confiner(settings.sandbox, settings.sandbox_bwrap, data)
    await confiner.probe()  # logs one clear line when user code cannot be confined
    check_limits, train_limits = sandbox_limits(settings)
    sandbox = Sandbox(
        settings.sandbox_wall_seconds,
        settings.sandbox_cpu_seconds,
        confiner,
        check_limits,
        Turns(settings.sandbox_per_user, settings.sandbox_backlog, settings.sandbox_children),
    )
    host.spawn(keep_warm(sandbox, host.stop, settings.sandbox_warm), name="sandbox")
    imports = Imports(
        Importer(
            settings.import_wall_seconds, settings.sandbox_cpu_seconds, confiner, check_limits
        ),
        work_dir=data / "trainer" / "imports",
        cache_dir=data / "cache",
        max_bytes=settings.import_max_bytes,
    )
    limits = storage_limits()
    await serve_endpoints(
        host.nc,
        subjects.SERVICE_TRAINER,
        codec.model_commands,
        command_handlers(store, sandbox, imports, limits.retention_days),
    )
    host.spawn(keep_purging(store, limits, host.stop), name="purge")
    holder = f"{settings.node_id}/{os.getpid()}/{uuid.uuid4().hex[:6]}"  # this worker, for leases
    spares = Spares(
        data / "trainer" / "spare-lease.json", settings.warm_child, confiner, train_limits
    )
    host.spawn(keep_spare(spares, host.stop), name="spare-child")
    places = QueuePlaces()
    await places.follow(host.nc)
    spares.eager = places.waiting  # with jobs queued, the next spare imports beside the job
    leases = Leases(host.nc, holder, settings.lease_timeout, settings.node_id)
    node = Node(settings.node_id, settings.drain_wait, lease_renewed=leases.renewed.get)
    leases.lost = node.lease_lost  # a refused renewal hands the job back for a fresh lease
    worker = Worker(
        nc=host.nc,
        store=store,
        leases=leases,
        settings=settings,
        spares=spares,
        places=places,
        node=node,
    )
    node.loops = partial(take_tickets, host, settings, worker)
    host.add_routes(*ROUTES, node=node, store=store)
    host.add_readiness_check(lambda: "draining" if node.draining else None)
    for name, text in GAUGES.items():
        host.metrics.describe(name, text)
    host.metrics.on_render(partial(node.export, host.metrics))
    await node.take_tickets()
    if not host.stop.is_set():
        host.mark_ready()


async def take_tickets(
    host: ServiceHost, settings: Settings, worker: Worker, stop: asyncio.Event
) -> None:
    """Start the ticket loops; they leave when the service stops or `stop` is set (a drain).

    Several loops: a job that cannot get devices shows Waiting instead of sitting unseen
    behind the running one; the gpu-broker decides which job gets devices.
    """
    host.spawn(either(host.stop, stop), name="ticket-stop")
    ready = []
    for n in range(max(1, settings.concurrent_jobs)):
        consuming = asyncio.Event()
        ready.append(consuming)
        loop = consume_tickets(
            host.js,
            subjects.STREAM_WORK,
            subjects.WORK_TRAIN_MODEL,
            subjects.CONSUMER_TRAINER,
            partial(train_model, worker),
            stop,
            ack_wait=settings.ack_wait,
            retry_delay=settings.retry_delay,
            ready=consuming,
        )
        host.spawn(loop, name=f"train-tickets-{n}")
    for consuming in ready:
        await until_either(consuming, host.stop)


async def either(first: asyncio.Event, second: asyncio.Event) -> None:
    """Set `second` once `first` is set (the service's stop ends a drain's loops too)."""
    await until_either(first, second)
    second.set()


async def keep_warm(sandbox: Sandbox, stop: asyncio.Event, now: bool) -> None:
    """Start the sandbox's warm child now (the first custom network check is then quick too);
    stop it with the service."""
    try:
        if now:
            await sandbox.warm()
        await stop.wait()
    finally:
        await sandbox.close()


async def keep_spare(spares: Spares, stop: asyncio.Event) -> None:
    """Start a spare training child for the node's last lease now; stop it with the service."""
    try:
        await spares.warm()
        await stop.wait()
    finally:
        await spares.close()


async def until_either(first: asyncio.Event, second: asyncio.Event) -> None:
    """Wait until one of two events is set (a worker that crashes at start sets `stop`)."""
    waits = {asyncio.create_task(first.wait()), asyncio.create_task(second.wait())}
    _, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
