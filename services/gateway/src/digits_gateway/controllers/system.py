"""`/health` (200 once the system came up: the launcher polls it), `/ready` (200 only while every
service, the bus and the gateway are ready now), `/api/v1/status` (the same, always 200: the web
UI's degraded banner polls it) and `/metrics`."""

from __future__ import annotations

from typing import Any

from litestar import MediaType, Response, get

from digits_gateway.deps import Gateway
from digits_gateway.status import SystemStatus


@get("/health", include_in_schema=False)
async def health(gw: Gateway) -> Response[dict[str, Any]]:
    """Ready: every backend service answered and the projection runs.

    While the read model catches up (a rebuild after its file was deleted), `rebuilding` says
    per stream how many events were applied since start and how many are still pending: the
    launcher waits as long as these move.
    """
    body = {
        "ready": gw.readiness.ready,
        "waiting_for": gw.readiness.waiting_for(),
        "services": gw.readiness.up,
        "positions": gw.projection.positions,
        "rebuilding": gw.projection.progress(),
    }
    return Response(body, status_code=200 if gw.readiness.ready else 503)


@get("/ready", tags=["system"])
async def ready(gw: Gateway) -> Response[SystemStatus]:
    """Ready now: 200 when every service's `/ready`, the bus (every stream has a leader with a
    quorum) and the gateway (disk floor, read model) are; else 503, each component's reasons."""
    status = await gw.readiness.board.status()
    return Response(status, status_code=200 if status.ready else 503)


@get("/api/v1/status", tags=["system"])
async def status_json(gw: Gateway) -> SystemStatus:
    """What `/ready` says, always with 200, and `notices`: the web UI's degraded banner."""
    return await gw.readiness.board.status()


@get("/metrics", include_in_schema=False, media_type="text/plain; version=0.0.4")
async def metrics(gw: Gateway) -> Response[str]:
    """Prometheus text: projection positions, events applied, commands, SSE streams."""
    gw.metrics.set("sse_streams", len(gw.hub.subscriptions))
    gw.metrics.set("ready", 1.0 if gw.readiness.ready else 0.0)
    return Response(gw.metrics.render(), media_type=MediaType.TEXT)
