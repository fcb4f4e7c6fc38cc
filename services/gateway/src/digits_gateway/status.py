"""The whole system's readiness, as the gateway's `/ready` and the web UI's banner read it.

Each backend service is asked its own `/ready` (addresses: `<data dir>/services.json`, which the
launcher writes; a service not listed there, as under compose, is judged by its NATS discovery
ping alone). The bus is judged by the gateway's own stream check (every stream has a leader with
a quorum) and the gateway by its data disk's floor and its read model. Cached for a couple of
seconds: a browser tab polls it, and so may a load balancer.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

import httpx
import msgspec
import structlog
from nats.aio.client import Client

from digits_proto import subjects
from digits_proto.runtime import (
    DEFAULT_MIN_FREE_DISK,
    NO_QUORUM,
    NOT_REACHABLE,
    StreamCheck,
    disk_reason,
    min_free_disk,
)

log = structlog.get_logger(__name__)

SERVICES_FILE = "services.json"  # the launcher's, named as in digits_cli.launcher
CACHE_SECONDS = 2.0
ASK_TIMEOUT_SECONDS = 2.0  # a service's /ready answers within 1.5 s (its JetStream check)


class Component(msgspec.Struct, frozen=True, kw_only=True):
    """One part of the system: the bus, the gateway, or a backend service."""

    name: str
    ready: bool
    reasons: list[str]


class Notice(msgspec.Struct, frozen=True, kw_only=True):
    """One line of the degraded banner: what it means for the user, then the detail."""

    text: str
    detail: str


class SystemStatus(msgspec.Struct, frozen=True, kw_only=True):
    """Every component with its reasons; `notices` say it in words for the banner."""

    ready: bool
    components: list[Component]
    notices: list[Notice]
    checked_at: float


class StatusBoard:
    """Asks every component (concurrently, each with a short timeout); cached `cache_seconds`."""

    def __init__(
        self,
        nc: Client,
        data_dir: str | Path,
        projection_ready: Callable[[], Awaitable[bool]],
        pinged: Mapping[str, bool],
        services: tuple[str, ...] = subjects.BACKEND_SERVICES,
        cache_seconds: float = CACHE_SECONDS,
    ):
        self.data_dir = Path(data_dir)
        self.projection_ready = projection_ready
        self.pinged = pinged  # NATS discovery pings, kept fresh by `Readiness`
        self.services = services
        self.cache_seconds = cache_seconds
        self.setting_error = ""
        try:
            self.min_free_disk = min_free_disk()
        except SystemExit as e:
            # Raised in the lifespan it would end as uvicorn's traceback: the gateway serves,
            # keeps the default floor, and its /ready names the bad setting until it is fixed.
            self.min_free_disk, self.setting_error = DEFAULT_MIN_FREE_DISK, str(e)
            log.error("setting_invalid", problem=self.setting_error)
        self.streams = StreamCheck(nc)
        self._lock = asyncio.Lock()
        self._last: SystemStatus | None = None
        self._addresses: tuple[int, dict[str, str]] = (-1, {})

    async def status(self) -> SystemStatus:
        """The system now (at most `cache_seconds` old); concurrent callers share one round."""
        async with self._lock:
            last = self._last
            if last is None or time.time() - last.checked_at >= self.cache_seconds:
                previous, self._last = last, await self._check()
                _log_change(previous, self._last)
                last = self._last
            return last

    async def _check(self) -> SystemStatus:
        addresses = self._service_addresses()
        async with httpx.AsyncClient(timeout=ASK_TIMEOUT_SECONDS) as http:
            bus, gateway, *services = await asyncio.gather(
                self._bus(),
                self._gateway(),
                *(self._service(http, name, addresses.get(_short(name))) for name in self.services),
            )
        components = [bus, gateway, *services]
        return SystemStatus(
            ready=all(c.ready for c in components),
            components=components,
            notices=notices(components),
            checked_at=time.time(),
        )

    async def _bus(self) -> Component:
        reasons = await self.streams.reasons()
        return Component(name="bus", ready=not reasons, reasons=reasons)

    async def _gateway(self) -> Component:
        reasons = [self.setting_error] if self.setting_error else []
        if disk := disk_reason(self.data_dir, self.min_free_disk):
            reasons.append(disk)
        if not await self.projection_ready():
            reasons.append("the read model is catching up with the streams")
        return Component(name="gateway", ready=not reasons, reasons=reasons)

    async def _service(self, http: httpx.AsyncClient, name: str, url: str | None) -> Component:
        short = _short(name)
        if url is None:  # not started by the launcher: its NATS discovery ping is all we know
            up = self.pinged.get(name, False)
            reasons = [] if up else ["does not answer its NATS discovery ping"]
            return Component(name=short, ready=up, reasons=reasons)
        try:
            r = await http.get(f"{url}/ready")
        except httpx.HTTPError as e:
            reason = f"does not answer at {url}/ready ({type(e).__name__})"
            return Component(name=short, ready=False, reasons=[reason])
        if r.status_code == 200:
            return Component(name=short, ready=True, reasons=[])
        try:
            waiting = [str(w) for w in r.json()["waiting_for"]]
        except (ValueError, KeyError, TypeError):
            waiting = []
        return Component(name=short, ready=False, reasons=waiting or [f"/ready: {r.status_code}"])

    def _service_addresses(self) -> dict[str, str]:
        """`services.json` (re-read when it changes): service name → its HTTP base URL."""
        path = self.data_dir / SERVICES_FILE
        try:
            stamp = path.stat().st_mtime_ns
        except OSError:
            return {}
        if stamp != self._addresses[0]:
            try:
                found = json.loads(path.read_text())
            except (OSError, ValueError):
                found = {}
            urls = {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}
            self._addresses = (stamp, urls)
        return self._addresses[1]


def _log_change(before: SystemStatus | None, now: SystemStatus) -> None:
    """One line when what the banner says changes, not one per poll."""
    if before is not None and before.notices == now.notices:
        return
    if now.ready:
        if before is not None:
            log.info("system_ready")
    else:
        log.warning("system_degraded", notices=[f"{n.text}: {n.detail}" for n in now.notices])


def _short(name: str) -> str:
    """`digits-gpu-broker` → `gpu-broker`, as the launcher and services.json name it."""
    return name.removeprefix("digits-")


def notices(components: list[Component]) -> list[Notice]:
    """The banner's lines: the bus first (it pauses everything), then each part not ready.

    While the bus is down every service also says so; those JetStream reasons are left out of
    the services' lines, and a service with nothing else to say gets none.
    """
    found: list[Notice] = []
    bus_down = False
    for c in components:
        if c.ready:
            continue
        if c.name == "bus":
            bus_down = True
            found.append(Notice(text=_bus_headline(c.reasons), detail="; ".join(c.reasons)))
            continue
        reasons = [r for r in c.reasons if not (bus_down and r.startswith("JetStream"))]
        if not reasons:
            continue
        text = (
            "The web gateway is degraded"
            if c.name == "gateway"
            else f"Service {c.name} is not ready"
        )
        found.append(Notice(text=text, detail="; ".join(reasons)))
    return found


def _bus_headline(reasons: list[str]) -> str:
    if any(r.startswith(NO_QUORUM) for r in reasons):
        return "Training paused: the message bus has no quorum"
    if any(r.startswith(NOT_REACHABLE) for r in reasons):
        return "Training paused: the message bus is not reachable"
    return "Training paused: the message bus is unavailable"
