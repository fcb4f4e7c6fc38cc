"""The lifecycle every service shares: connect, ensure streams, serve HTTP, stop on SIGTERM.

HTTP (see `_app.py`): `/health`, `/ready`, `/metrics`, `/schema`, plus the service's own routes:

    @get("/devices")
    async def devices(broker: Broker) -> list[DeviceView]: ...

    @post("/devices/{device_id:str}/cordon", guards=[ops_guard], security=OPS_SECURITY)
    async def cordon(broker: Broker, device_id: str) -> DeviceView: ...

    host.add_routes(devices, cordon, broker=broker)   # keyword arguments: dependencies

`add_routes` may be called before `start()` or during `setup` (the app is already serving
`/health` then; the routes join it). `/ready` answers 503 with its reasons until `mark_ready()`,
and afterwards while JetStream or one of the system's streams is unavailable (no quorum), or the
data directory's disk is under `DIGITS_MIN_FREE_DISK`; `host.add_readiness_check(fn)` adds a
reason of the service's own (`fn()` returns a reason, or None when fine). The port is
`http_port` (0: any free port, -1: no HTTP at all, for tests); the address
`DIGITS_<SERVICE>_HOST`, else 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from litestar.types import ControllerRouterHandler
from nats.aio.client import Client
from nats.js import JetStreamContext

from digits_proto.runtime._app import HttpServer, build_app, routes_router
from digits_proto.runtime._bus import connect, credentials_for, ensure_streams
from digits_proto.runtime._datadir import check_writable
from digits_proto.runtime._disk import disk_reason, min_free_disk
from digits_proto.runtime._metrics import Metrics, bind
from digits_proto.runtime._opstoken import ops_token
from digits_proto.runtime._streamcheck import StreamCheck

log = structlog.get_logger(__name__)

GRACE_SECONDS = 2.5
DRAIN_SECONDS = 5.0


def env_name(service: str) -> str:
    """`digits-gpu-broker` → `GPU_BROKER`, as in `DIGITS_GPU_BROKER_PORT`."""
    return service.removeprefix("digits-").upper().replace("-", "_")


class ServiceHost:
    """What a service's `app.py` composes: NATS, JetStream, readiness, metrics, a stop event."""

    def __init__(
        self,
        name: str,
        nats_url: str,
        http_port: int = 0,
        http_host: str | None = None,
        *,
        data_dir: str | os.PathLike[str] | None = None,
        routes: tuple[ControllerRouterHandler, ...] | list[ControllerRouterHandler] = (),
    ):
        self.name = name
        self.nats_url = nats_url
        # Read now, before the service starts any child process (it leaves the environment).
        self.creds = credentials_for(name)
        self.http_port = http_port
        env = f"DIGITS_{env_name(name)}_HOST"
        self.http_host = http_host or os.environ.get(env, "").strip() or "127.0.0.1"
        # The operator token lives here (the launcher sets DIGITS_DATA_DIR for every service).
        self.data_dir = data_dir if data_dir is not None else os.environ.get("DIGITS_DATA_DIR")
        # Read now: a bad value stops the service at start with one line, not at its first /ready.
        self.min_free_disk = min_free_disk()
        self.metrics = Metrics(name)
        self.stop = asyncio.Event()
        self.ready = False
        self.nc: Client
        self.js: JetStreamContext
        self._streams: StreamCheck | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._http: HttpServer | None = None
        self._routes: list[tuple[list[ControllerRouterHandler], dict[str, Any]]] = []
        self._checks: list[Callable[[], str | None]] = []
        if routes:
            self.add_routes(*routes)

    def add_routes(self, *handlers: ControllerRouterHandler, **dependencies: Any) -> None:
        """Serve these Litestar handlers/controllers; keyword arguments become dependencies
        (a handler parameter of that name receives the value)."""
        self._routes.append((list(handlers), dependencies))
        if self._http is not None:
            self._http.register(routes_router(handlers, dependencies))

    def add_readiness_check(self, check: Callable[[], str | None]) -> None:
        """`/ready` answers 503 while `check()` returns a reason (e.g. "draining")."""
        self._checks.append(check)

    async def not_ready(self) -> list[str]:
        """Why the service is not ready (empty when it is): its own checks, JetStream and every
        stream the system uses (a leader with a quorum, cached ~1 s), the data disk's floor."""
        if not self.ready:
            return ["starting: consumers not running yet"]
        reasons = [reason for check in self._checks if (reason := check())]
        if self._streams is not None:
            reasons += await self._streams.reasons()
        if disk := disk_reason(self.data_dir, self.min_free_disk):
            reasons.append(disk)
        return reasons

    async def start(self) -> None:
        """Connect and create the streams; readiness stays false until `mark_ready()`."""
        # Whatever the service writes (logs, caches, scratch files) is the owner's alone.
        os.umask(0o077)
        if self.data_dir is not None:  # a read-only or full data directory: one line, exit 1
            check_writable(self.data_dir)
        # Before anything answers: a SIGTERM that arrives once /health says 200 (setup may still
        # be running) must end in a clean stop, not the default kill.
        self._catch_stop_signals()
        self.nc = await connect(self.nats_url, self.name, self.creds)
        bind(self.nc, self.metrics)
        self.js = self.nc.jetstream()
        self._streams = StreamCheck(self.nc)
        await ensure_streams(self.js)
        if self.http_port >= 0:
            routers = [routes_router(h, d) for h, d in self._routes]
            token = ops_token(self.data_dir)
            app = build_app(self.name, self.metrics, self.not_ready, token, routers)
            self._http = HttpServer(app, self.http_host, self.http_port)
            await self._http.start()
        log.info("service_started", name=self.name, http=self.http_host, http_port=self.bound_port)

    @property
    def bound_port(self) -> int | None:
        """The port the HTTP app listens on (useful when 0 was asked)."""
        return self._http.port if self._http is not None else None

    def mark_ready(self) -> None:
        """Consumers and endpoints are up: `/ready` answers 200."""
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
        self._catch_stop_signals()
        await self.stop.wait()

    def _catch_stop_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stop.set)

    async def close(self) -> None:
        """Stop background loops, drain NATS, close the HTTP app."""
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
        if self._http is not None:
            await self._http.stop()
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
