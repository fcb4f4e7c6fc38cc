"""Fake cluster routes for the stand-in gateway: devices, holders, telemetry, the queue."""

from __future__ import annotations

import copy
import time
from typing import Any

from litestar import Request, get
from litestar.response import Template

from digits_gateway import pages

GIB = 1 << 30
MODEL = "20261127-110000-e5f6"


def _sample(
    device_id: str,
    used: float,
    util: float | None,
    temp: float | None,
    power: float | None,
    procs: list[dict[str, int]],
    job: str | None,
) -> dict[str, Any]:
    return {
        "node_id": "gpu-node-1",
        "device_id": device_id,
        "memory_used": int(used * GIB),
        "memory_total": 80 * GIB,
        "utilization": util,
        "temperature": temp,
        "power_watts": power,
        "processes": procs,
        "job_id": job,
        "host_cpu": 38.5,
        "host_memory_used": 41 * GIB,
        "host_memory_total": 128 * GIB,
        "t": round(time.time(), 1),
    }


HELD = _sample("gpu0", 61.3, 97.0, 74.0, 612.4, [{"pid": 48211, "memory": 60 * GIB}], MODEL)
FREE = _sample("gpu1", 0.5, 0.0, 33.0, 71.0, [], None)


def _device(
    device_id: str, index: int, holder: dict[str, Any] | None, sample: dict[str, Any]
) -> dict[str, Any]:
    return {
        "device_id": device_id,
        "kind": "gpu",
        "index": index,
        "name": "NVIDIA H100 80GB HBM3",
        "memory_total": 80 * GIB,
        "node_id": "gpu-node-1",
        "holder": holder,
        "sample": sample,
    }


CLUSTER: dict[str, Any] = {
    "nodes": [
        {
            "node_id": "gpu-node-1",
            "alive": True,
            "devices": [
                _device(
                    "gpu0",
                    0,
                    {"job_id": MODEL, "name": "lenet-mnist", "lease_id": "l1", "since": 0},
                    HELD,
                ),
                _device("gpu1", 1, None, FREE),
            ],
        },
        {
            "node_id": "gpu-node-2",
            "alive": False,
            "devices": [
                {**_device("gpu0", 0, None, FREE), "node_id": "gpu-node-2", "sample": None},
            ],
        },
    ],
    "available": 1,
    "total": 2,
    "kind": "gpu",
    "queue": [
        {
            "job_id": "20261127-120500-aaaa",
            "name": "alexnet-big",
            "status": "Waiting",
            "position": 1,
            "priority": 5,
            "username": "bob",
            "count": 2,
            "device_indexes": [],
            "node_id": "gpu-node-1",
            "waiting_for": "waiting for 2 devices",
        },
        {
            "job_id": "20261127-120600-bbbb",
            "name": "lenet-again",
            "status": "Waiting",
            "position": 2,
            "priority": 0,
            "username": "alice",
            "count": 1,
            "device_indexes": [1],
            "node_id": "gpu-node-1",
            "waiting_for": "waiting for device index 1",
        },
        {
            "job_id": "20261127-120700-cccc",
            "name": "on-a-building-dataset",
            "status": "Waiting",
            "position": None,
            "priority": 0,
            "username": "alice",
            "count": 1,
            "device_indexes": [],
            "node_id": "",
            "waiting_for": "Waiting for dataset 20261127-100000-a1b2",
        },
    ],
}

# A live `gpu` event on the model's stream: the held GPU got busier.
GPU_EVENT = {
    "node_id": "gpu-node-1",
    "devices": [{**HELD, "utilization": 99.0, "temperature": 76.0}],
}
# The same moment on /events (every device of the node): the cluster page's last hour grows.
ALL_GPU_EVENT = {
    "node_id": "gpu-node-1",
    "devices": [{**HELD, "utilization": 99.0, "temperature": 76.0}, FREE],
}


@get("/api/v1/cluster", sync_to_thread=False)
def cluster_json() -> dict[str, Any]:
    """The fake cluster."""
    return copy.deepcopy(CLUSTER)


# job_id → the sample of the device it holds (gpu0 on gpu-node-1); tests/web/fake_hardware
# lets a test take one away, as a lease ending does.
HOLDING: dict[str, dict[str, Any]] = {MODEL: HELD}


@get("/api/v1/jobs/{job_id:str}/hardware", sync_to_thread=False)
def job_hardware(job_id: str) -> dict[str, Any]:
    """The model holds gpu0 on gpu-node-1 (and whatever HOLDING adds); others hold nothing."""
    devices = []
    if job_id in HOLDING:
        devices = [
            {
                "node_id": "gpu-node-1",
                "device_id": "gpu0",
                "kind": "gpu",
                "name": "NVIDIA H100 80GB HBM3",
                "sample": {**HOLDING[job_id], "job_id": job_id},
            }
        ]
    return {"job_id": job_id, "devices": devices}


@get("/cluster", sync_to_thread=False)
def cluster_page(request: Request) -> Template:
    """The cluster page rendered from the fake view."""
    return pages._page("cluster.html", "Cluster", "alice", view=copy.deepcopy(CLUSTER))


ROUTES = [cluster_json, job_hardware, cluster_page]
