"""`/health` (200 only when the system is up: the launcher polls it) and `/metrics`."""

from __future__ import annotations

from typing import Any

from litestar import MediaType, Response, get

from digits_gateway.deps import Gateway


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


@get("/metrics", include_in_schema=False, media_type="text/plain; version=0.0.4")
async def metrics(gw: Gateway) -> Response[str]:
    """Prometheus text: projection positions, events applied, commands, SSE streams."""
    gw.metrics.set("sse_streams", len(gw.hub.subscriptions))
    gw.metrics.set("ready", 1.0 if gw.readiness.ready else 0.0)
    return Response(gw.metrics.render(), media_type=MediaType.TEXT)
