"""The cluster: nodes, devices, who holds each, the queue; `/cluster` page and its JSON."""

from __future__ import annotations

import time
from typing import Annotated, Any

from litestar import Request, get
from litestar.params import Parameter
from litestar.response import Template

from digits_gateway import ui
from digits_gateway.deps import Gateway
from digits_gateway.errors import JobNotFound
from digits_gateway.params import username
from digits_gateway.readmodel import cluster, hardware_history, queries
from digits_gateway.readmodel.telemetry import TelemetryRelay, sample_view


def _relay(gw: Gateway) -> TelemetryRelay | None:
    return gw.telemetry


def cluster_view(gw: Gateway) -> dict[str, Any]:
    """Nodes (alive or gone) with their devices, holders and last samples; the queue; counts."""
    relay = _relay(gw)
    with gw.db.cursor() as cur:
        found = cluster.nodes(cur)
        waiting = cluster.queue(cur)
    nodes = []
    available = total = 0
    kinds: set[str] = set()
    for node_id, devices in found.items():
        alive = relay.alive(node_id) if relay is not None else True
        samples = relay.samples(node_id) if relay is not None else {}
        for d in devices:
            sample = samples.get(d.get("device_id", ""))
            d["sample"] = sample_view(node_id, sample, d["holder"]) if sample else None
            if alive:
                total += 1
                available += d["holder"] is None
                kinds.add(d.get("kind", "gpu"))
        nodes.append({"node_id": node_id, "alive": alive, "devices": devices})
    return {
        "nodes": nodes,
        "available": available,
        "total": total,
        "kind": "cpu" if kinds == {"cpu"} else "gpu",
        "queue": waiting,
    }


@get("/api/v1/cluster")
async def cluster_json(gw: Gateway) -> dict[str, Any]:
    """Nodes, devices with holders and their last telemetry, available/total, and the queue."""
    return cluster_view(gw)


@get("/api/v1/queue")
async def queue_json(gw: Gateway) -> dict[str, Any]:
    """Jobs waiting, in serving order: position, priority, what each waits for."""
    with gw.db.cursor() as cur:
        return {"queue": cluster.queue(cur)}


@get("/api/v1/jobs/{job_id:str}/hardware")
async def job_hardware(gw: Gateway, job_id: str) -> dict[str, Any]:
    """The devices a job holds now, with their last telemetry (the model page's panel)."""
    relay = _relay(gw)
    with gw.db.cursor() as cur:
        if queries.get_job(cur, job_id) is None:
            raise JobNotFound()
        held = cluster.job_devices(cur, job_id)
        found = cluster.nodes(cur)
    devices = []
    for node_id, device_id in held:
        info = next((d for d in found.get(node_id, []) if d.get("device_id") == device_id), {})
        sample = relay.samples(node_id).get(device_id) if relay is not None else None
        devices.append(
            {
                "node_id": node_id,
                "device_id": device_id,
                "name": info.get("name", device_id),
                "kind": info.get("kind", ""),
                "sample": sample_view(node_id, sample, {"job_id": job_id}) if sample else None,
            }
        )
    return {"job_id": job_id, "devices": devices}


def _named(cur: Any, series: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each device's series with its announced name and kind (the cluster may have forgotten
    a node since: then its id stands)."""
    found = cluster.nodes(cur)
    for d in series:
        info = next(
            (x for x in found.get(d["node_id"], []) if x.get("device_id") == d["device_id"]), {}
        )
        d["name"] = info.get("name", d["device_id"])
        d["kind"] = info.get("kind", "cpu" if d["device_id"].startswith("cpu") else "gpu")
    return series


@get("/api/v1/jobs/{job_id:str}/hardware/history")
async def job_hardware_history(
    gw: Gateway,
    job_id: str,
    since: Annotated[
        float, Parameter(ge=0, description="only rows after this time (epoch seconds)")
    ] = 0.0,
) -> dict[str, Any]:
    """The job's device utilization and memory, and its node's CPU and memory, over the run:
    one column-wise series per device (`t` in epoch seconds), kept after the job ends."""
    with gw.db.cursor() as cur:
        if queries.get_job(cur, job_id) is None:
            raise JobNotFound()
        devices = _named(cur, hardware_history.job_history(cur, job_id, since))
    return {"job_id": job_id, "stride_seconds": hardware_history.STRIDE, "devices": devices}


@get("/api/v1/cluster/history")
async def cluster_history(
    gw: Gateway,
    minutes: Annotated[int, Parameter(ge=1, le=60, description="how far back, 1 to 60")] = 60,
) -> dict[str, Any]:
    """Every device's utilization and memory over the last `minutes` (the cluster page)."""
    now = time.time()
    with gw.db.cursor() as cur:
        devices = _named(cur, hardware_history.recent(cur, minutes * 60.0, now))
    return {"now": round(now, 1), "minutes": minutes, "devices": devices}


@get("/cluster", include_in_schema=False)
async def cluster_page(gw: Gateway, request: Request[Any, Any, Any]) -> Template:
    """Nodes, devices, who holds each, and the queue; live through `/events`."""
    return ui.pages()._page(  # the shared page frame (title, user, assets)
        "cluster.html", "Cluster", username(request), view=cluster_view(gw)
    )
