"""Is the system up? Every backend service answers nats.micro discovery and the projector runs.

`Readiness.ready` latches (the launcher's start gate, `/health`); `Readiness.board` says how the
system is now, every service's `/ready`, the bus and the gateway's disk (`/ready`, the banner).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import structlog
from nats.aio.client import Client

from digits_gateway.status import StatusBoard
from digits_proto import subjects

log = structlog.get_logger(__name__)


class Readiness:
    """Pings each service every few seconds; ready once all answered and the projection has
    applied what the streams held at start.

    Readiness latches: a service restarting later shows in `/health`'s detail, but the gateway
    keeps serving (its commands then answer 503 until the service is back).
    """

    def __init__(
        self,
        nc: Client,
        projection_ready: Callable[[], Awaitable[bool]],
        services: tuple[str, ...] = subjects.BACKEND_SERVICES,
        interval: float = 3.0,
        data_dir: str | Path = ".",
    ):
        self.nc = nc
        self.projection_ready = projection_ready
        self.projection_ok = False
        self.services = services
        self.interval = interval
        self.up: dict[str, bool] = dict.fromkeys(services, False)
        self.ready = False
        self.board = StatusBoard(nc, data_dir, projection_ready, self.up, services)

    def waiting_for(self) -> list[str]:
        """What the system still waits for, in words."""
        missing = [name for name, ok in self.up.items() if not ok]
        if not self.projection_ok:
            missing.append("the read model")
        return missing

    async def check(self) -> None:
        """Ping every service once (any reply means up)."""
        results = await asyncio.gather(*(self._ping(name) for name in self.services))
        self.projection_ok = await self.projection_ready()
        for name, ok in zip(self.services, results, strict=True):
            if ok != self.up[name]:
                log.info("service_seen" if ok else "service_lost", service=name)
            self.up[name] = ok
        if not self.ready and not self.waiting_for():
            self.ready = True
            log.info("gateway_ready")

    async def _ping(self, name: str) -> bool:
        try:
            await self.nc.request(subjects.micro_ping(name), b"", timeout=min(1.0, self.interval))
        except Exception:  # noqa: BLE001 - no responders, timeout, disconnected: all mean down
            return False
        return True

    async def run(self) -> None:
        """Re-check forever (cancelled at shutdown)."""
        while True:
            await self.check()
            await asyncio.sleep(self.interval)
