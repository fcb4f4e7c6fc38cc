"""The lifecycle every service shares: connect, ensure streams, serve health, stop on SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Awaitable, Callable

import structlog
from nats.aio.client import Client
from nats.js import JetStreamContext

from digits_proto.runtime._bus import connect, credentials_for, ensure_streams
from digits_proto.runtime._http import Metrics, serve_health

log = structlog.get_logger(__name__)

GRACE_SECONDS = 2.5
DRAIN_SECONDS = 5.0


class ServiceHost:
    """What a service's `app.py` composes: NATS, JetStream, readiness, metrics, a stop event."""

    def __init__(self, name: str, nats_url: str, http_port: int = 0, http_host: str = "127.0.0.1"):
        self.name = name
        self.nats_url = nats_url
        # Read now, before the service starts any child process (it leaves the environment).
        self.creds = credentials_for(name)
        self.http_port = http_port
        self.http_host = http_host
        self.metrics = Metrics(name)
        self.stop = asyncio.Event()
        self.ready = False
        self.nc: Client
        self.js: JetStreamContext
        self._tasks: list[asyncio.Task[None]] = []
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        """Connect and create the streams; readiness stays false until `mark_ready()`."""
        # Whatever the service writes (logs, caches, scratch files) is the owner's alone.
        os.umask(0o077)
        self.nc = await connect(self.nats_url, self.name, self.creds)
        self.js = self.nc.jetstream()
        await ensure_streams(self.js)
        if self.http_port >= 0:
            self._server = await serve_health(
                self.http_host,
                self.http_port,
                lambda: self.ready and self.nc.is_connected,
                self.metrics,
            )
        log.info("service_started", name=self.name, http_port=self.bound_port)

    @property
    def bound_port(self) -> int | None:
        """The port the health server listens on (useful when 0 was asked)."""
        if self._server is None or not self._server.sockets:
            return None
        return int(self._server.sockets[0].getsockname()[1])

    def mark_ready(self) -> None:
        """Consumers and endpoints are up: `/health` answers 200."""
        self.ready = True
        log.info("service_ready", name=self.name)

    def spawn(self, coro: Awaitable[None], name: str = "") -> asyncio.Task[None]:
        """Run a background loop for the service's lifetime; a crash stops the service."""

        async def guarded() -> None:
            try:
                await coro
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("background_task_crashed", task=name)
                self.stop.set()

        task = asyncio.create_task(guarded(), name=name or None)
        self._tasks.append(task)
        return task

    async def wait(self) -> None:
        """Block until SIGTERM/SIGINT (or `stop` is set)."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stop.set)
        await self.stop.wait()

    async def close(self) -> None:
        """Stop background loops, drain NATS, close the health server."""
        self.ready = False
        self.stop.set()
        # Loops watch `stop` and leave between fetches; cancelling one mid-fetch would strand a
        # message nats-py never marks done, and drain() would then wait out its whole timeout.
        pending: set[asyncio.Task[None]] = set(self._tasks)
        if pending:
            _, pending = await asyncio.wait(pending, timeout=GRACE_SECONDS)
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._server is not None:
            self._server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.nc.drain(), timeout=DRAIN_SECONDS)
        log.info("service_stopped", name=self.name)


async def run_service(host: ServiceHost, setup: Callable[[ServiceHost], Awaitable[None]]) -> None:
    """Start `host`, run `setup` (register endpoints, spawn loops, mark ready), wait, close."""
    await host.start()
    try:
        await setup(host)
        await host.wait()
    finally:
        await host.close()
