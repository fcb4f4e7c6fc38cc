"""The inference service's HTTP routes: its network cache and the classify-many jobs it works.

Read-only JSON, plus `DELETE /cache` behind the operator token (the next request loads its
network again).
"""

from __future__ import annotations

from collections.abc import Hashable
from datetime import UTC, datetime

import msgspec
from litestar import delete, get

from digits_inference.handlers import Deps
from digits_proto.runtime import OPS_SECURITY, Metrics, ops_guard


class CachedNet(msgspec.Struct, frozen=True, kw_only=True):
    """One loaded network: the model snapshot it is, where it runs, its parameter bytes."""

    job_id: str
    epoch: float | int | None
    digest: str
    use: str  # "classify" (forward passes) or "explain" (layer visualizations)
    device: str
    bytes: int


class CacheView(msgspec.Struct, frozen=True, kw_only=True):
    """The cache, least recently used first, with its bounds and counters."""

    networks: list[CachedNet]
    bytes: int
    max_bytes: int  # 0: bounded by count only
    max_networks: int
    loads: int
    evictions: int


class CacheEmptied(msgspec.Struct, frozen=True, kw_only=True):
    """What `DELETE /cache` dropped."""

    networks: int
    bytes: int


class ManyJob(msgspec.Struct, frozen=True, kw_only=True):
    """A classify-many job in flight on this instance."""

    run_id: str
    job_id: str
    done: int
    total: int
    started_at: datetime


def describe(key: Hashable, size: int) -> CachedNet:
    """A cache key — `((job, epoch, digest), device)` or `("explain", (job, epoch, digest))` —
    as JSON fields (an unexpected shape keeps its text in `job_id`)."""
    use, device, inner = "classify", "", key
    if isinstance(key, tuple) and len(key) == 2 and key[0] == "explain":
        use, inner = "explain", key[1]
    elif isinstance(key, tuple) and len(key) == 2 and isinstance(key[1], str):
        inner, device = key
    if isinstance(inner, tuple) and len(inner) == 3:
        job, epoch, digest = inner
        return CachedNet(
            job_id=str(job), epoch=epoch, digest=str(digest), use=use, device=device, bytes=size
        )
    return CachedNet(job_id=str(key), epoch=None, digest="", use=use, device=device, bytes=size)


def cache_view(deps: Deps) -> CacheView:
    """The cache as it stands."""
    cache = deps.predictor.cache
    sizes = cache.sizes()
    return CacheView(
        networks=[describe(key, size) for key, size in sizes],
        bytes=sum(size for _, size in sizes),
        max_bytes=cache.max_bytes,
        max_networks=cache.max_items,
        loads=cache.loads,
        evictions=cache.evictions,
    )


def watch_cache(deps: Deps, metrics: Metrics) -> None:
    """Cache gauges read at each scrape of /metrics."""

    def update() -> None:
        sizes = deps.predictor.cache.sizes()
        metrics.set("cache_bytes", float(sum(size for _, size in sizes)))
        metrics.set("cache_networks", float(len(sizes)))
        metrics.set("classify_many_running", float(len(deps.in_flight)))

    metrics.describe("classify_many_running", "Classify-many jobs being worked on here")
    metrics.on_render(update)


@get("/cache", tags=["inference"])
async def get_cache(deps: Deps) -> CacheView:
    """Loaded networks and their memory (parameter bytes), least recently used first."""
    return cache_view(deps)


@delete("/cache", tags=["inference"], guards=[ops_guard], security=OPS_SECURITY, status_code=200)
async def empty_cache(deps: Deps) -> CacheEmptied:
    """Drop every loaded network (after the forward pass running now, on the same thread)."""
    count, size = await deps.predictor.run(deps.predictor.cache.clear)
    return CacheEmptied(networks=count, bytes=size)


@get("/classify-many", tags=["inference"])
async def list_many(deps: Deps) -> list[ManyJob]:
    """Classify-many jobs this instance is working on, with images done out of the total."""
    return [
        ManyJob(
            run_id=job.run_id,
            job_id=job.job_id,
            done=job.progress.get("done", 0),
            total=job.progress.get("total", 0),
            started_at=datetime.fromtimestamp(job.started_at, UTC),
        )
        for job in list(deps.in_flight.values())
    ]


ROUTES = (get_cache, empty_cache, list_many)
