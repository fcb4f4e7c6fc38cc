"""The cluster read side: devices, holders and the queue projected; telemetry relayed as SSE."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from digits_gateway.forms import FormErrors, model_commands
from digits_proto import codec, subjects
from digits_proto.base import Principal, Role
from digits_proto.gpus import (
    Device,
    DeviceSample,
    DevicesDiscovered,
    LeaseGranted,
    QueueChanged,
    QueueEntry,
    TelemetrySampled,
)
from tests.gateway.accounts import live_client
from tests.gateway.helpers import sse_events, take, until
from tests.gateway.test_sse import model_job

ALICE = Principal(username="alice", role=Role.USER)

GIB = 1 << 30


async def announce(js, node_id: str = "n1", count: int = 2) -> None:
    """A broker's DevicesDiscovered for `count` fake GPUs."""
    devices = [
        Device(device_id=f"gpu{i}", kind="gpu", index=i, name=f"Fake {i}", memory_total=16 * GIB)
        for i in range(count)
    ]
    event = DevicesDiscovered(node_id=node_id, devices=devices)
    await js.publish(subjects.gpu_events(node_id), codec.encode(event))


async def grant(js, job_id: str, device: str, node_id: str = "n1") -> None:
    """A LeaseGranted for one device."""
    event = LeaseGranted(
        node_id=node_id, lease_id=f"l-{job_id}", job_id=job_id, device_ids=[device]
    )
    await js.publish(subjects.gpu_events(node_id), codec.encode(event))


def sample(node_id: str = "n1") -> bytes:
    """One telemetry message: gpu0 idle, gpu1 busy with one process."""
    return codec.encode(
        TelemetrySampled(
            node_id=node_id,
            samples=[
                DeviceSample(device_id="gpu0", memory_used=GIB, memory_total=16 * GIB),
                DeviceSample(
                    device_id="gpu1",
                    memory_used=8 * GIB,
                    memory_total=16 * GIB,
                    utilization=93.0,
                    temperature=71.0,
                    power_watts=250.5,
                    processes=[(4242, 7 * GIB)],
                ),
            ],
        )
    )


async def test_cluster_shows_who_holds_each_device_and_the_queue(client, js) -> None:
    """One of two GPUs leased: 1 of 2 available, the holder named; the queue in order."""
    await announce(js)
    await grant(js, "job-a", "gpu1")
    entries = [
        QueueEntry(
            job_id="job-b", position=1, priority=5, user="bob", reason="waiting for 1 device"
        ),
        QueueEntry(job_id="job-c", position=2, count=2, reason="waiting for 2 devices"),
    ]
    await js.publish(
        subjects.GPU_QUEUE_EVENTS, codec.encode(QueueChanged(node_id="n1", entries=entries))
    )

    async def projected() -> dict | None:
        c = (await client.get("/api/v1/cluster")).json()
        return c if c["total"] == 2 and c["queue"] else None

    c = await until(projected)
    assert (c["available"], c["total"], c["kind"]) == (1, 2, "gpu")
    (node,) = c["nodes"]
    holders = {d["device_id"]: d["holder"] for d in node["devices"]}
    assert holders["gpu0"] is None and holders["gpu1"]["job_id"] == "job-a"
    queue = (await client.get("/api/v1/queue")).json()["queue"]
    assert [(q["job_id"], q["position"], q["priority"]) for q in queue] == [
        ("job-b", 1, 5),
        ("job-c", 2, 0),
    ]
    assert queue[1]["waiting_for"] == "waiting for 2 devices"
    page = await client.get("/cluster")
    assert page.status_code == 200 and "1 of 2 GPUs available" in page.text
    assert "job-b" in page.text


async def test_telemetry_reaches_the_home_stream_and_the_holding_jobs_stream(
    live_url, backend, js, nc
) -> None:
    """`gpu` events: /events gets every device; a job's stream only the device it holds."""
    async with live_client(live_url, "alice") as http:
        model_id = await model_job(http, backend)
        await announce(js)
        await grant(js, model_id, "gpu1")

        async def leased() -> bool:
            hw = (await http.get(f"/api/v1/jobs/{model_id}/hardware")).json()
            return bool(hw["devices"])

        await until(leased)

        async def publish_forever() -> None:
            while True:
                await nc.publish(subjects.telemetry("n1"), sample())
                await asyncio.sleep(0.1)

        pump = asyncio.create_task(publish_forever())
        try:
            async with http.stream("GET", "/events") as response:
                events = sse_events(response)
                (history,) = await take(events, 1)
                assert history.event == "history"
                (gpu,) = await take(events, 1)
            assert gpu.event == "gpu" and gpu.id is None
            assert [d["device_id"] for d in gpu.data["devices"]] == ["gpu0", "gpu1"]
            async with http.stream("GET", f"/jobs/{model_id}/events") as response:
                events = sse_events(response)
                await take(events, 1)  # history
                (gpu,) = await take(events, 1)
            (device,) = gpu.data["devices"]
            assert device["device_id"] == "gpu1" and device["job_id"] == model_id
            assert device["utilization"] == 93.0 and device["temperature"] == 71.0
            assert device["processes"] == [{"pid": 4242, "memory": 7 * GIB}]
            hw = (await http.get(f"/api/v1/jobs/{model_id}/hardware")).json()
            assert hw["devices"][0]["sample"]["power_watts"] == 250.5
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump


def test_the_priority_form_field_reaches_the_train_spec() -> None:
    """`priority` maps onto TrainSpec (default 0); out of range names the field."""
    base = {"dataset": "ds", "model_name": "net"}
    [command] = model_commands({**base, "priority": "7"}, ALICE, lambda _id: True)
    assert command.spec.priority == 7
    [command] = model_commands(base, ALICE, lambda _id: True)
    assert command.spec.priority == 0
    with pytest.raises(FormErrors) as refused:
        model_commands({**base, "priority": "1000"}, ALICE, lambda _id: True)
    assert "priority" in refused.value.errors
