"""Inference placement: a free device leased from the real gpu-broker without waiting, else the CPU."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import mxnet as mx
import pytest
from nats.js.errors import NoKeysError

from digits_gpu_broker import app as broker_app
from digits_gpu_broker.settings import Settings as BrokerSettings
from digits_inference import app
from digits_inference.placement import Placement, device_context
from digits_inference.settings import Settings
from digits_proto import codec, subjects
from digits_proto.gpus import AcquireLease, Device, LeaseAccepted
from digits_proto.inference import Classified, ClassifyOne
from digits_proto.runtime import ServiceHost, request
from tests.fakes.fake_nvml import FakeNvml
from tests.fakes.principals import ALICE
from tests.inference.test_service import NORMAL, add_dataset, add_model, png

StartBroker = Callable[..., Awaitable[ServiceHost]]


@pytest.fixture
async def start_broker(nats_url: str, js) -> AsyncIterator[StartBroker]:
    """Factory: a real gpu-broker in this process (`nvml=` a FakeNvml, or CPU slots)."""
    running: list[tuple[ServiceHost, asyncio.Task[None]]] = []

    async def start(nvml: Any = None, **overrides: Any) -> ServiceHost:
        values = {"nats_url": nats_url, "node_id": "n1", "port": -1, "lease_ttl": 2.0}
        settings = BrokerSettings(**{**values, **overrides})
        host = ServiceHost(subjects.SERVICE_GPU_BROKER, nats_url, -1)
        task = asyncio.create_task(broker_app.serve(host, settings, nvml))
        running.append((host, task))
        for _ in range(500):
            if host.ready or task.done():
                break
            await asyncio.sleep(0.01)
        assert host.ready, "broker did not become ready"
        return host

    yield start
    for host, _ in running:
        host.stop.set()
    for _, task in running:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(task, timeout=10)


async def train_lease(nc, job_id: str = "train-1", count: int = 1) -> LeaseAccepted:
    """Lease devices as a trainer does (waiting kind, on the node's subject)."""
    cmd = AcquireLease(job_id=job_id, holder="trainer-a", count=count)
    body, rejected = await request(nc, subjects.gpus_node_command("n1", "acquire"), cmd)
    assert rejected is None, rejected
    reply = codec.lease_reply.decode(body)
    assert isinstance(reply, LeaseAccepted)
    return reply


async def kv_keys(js, bucket: str) -> list[str]:
    """The keys in a KV bucket (none when it is empty)."""
    kv = await js.key_value(bucket)
    try:
        return list(await kv.keys())
    except NoKeysError:
        return []


async def lease_keys(js) -> list[str]:
    """The device keys currently leased."""
    return await kv_keys(js, subjects.KV_LEASES)


def test_a_leased_gpu_falls_back_to_the_cpu_when_this_mxnet_sees_none() -> None:
    """gpu0 with a CPU-only MXNet runs on the CPU (the trainer's rule); a visible one is used."""
    gpu = Device(device_id="gpu0", kind="gpu", index=0)
    assert device_context([gpu], gpus_visible=0) == mx.cpu()
    assert device_context([gpu], gpus_visible=1) == mx.gpu(0)
    assert device_context([Device(device_id="cpu0", kind="cpu", index=0)]) == mx.cpu()


async def test_inference_leases_a_free_fake_gpu_and_runs_on_the_cpu_build(
    start_broker, nc, js
) -> None:
    """With a free fake GPU the lease is granted (gpu0); CPU MXNet still computes on the CPU."""
    await start_broker(FakeNvml(count=1))
    placement = Placement(nc, node_id="n1", idle_release=30)
    try:
        ctx = await placement.acquire_now()
        assert placement.lease is not None
        assert [d.device_id for d in placement.lease.devices] == ["gpu0"]
        assert ctx == mx.cpu()  # this MXNet build sees no GPU
        assert any(k.endswith(".gpu0") for k in await lease_keys(js))
    finally:
        await placement.close()
    assert not any(k.endswith(".gpu0") for k in await lease_keys(js))  # released on close


async def test_inference_never_joins_the_training_queue_when_devices_are_busy(
    start_broker, nc, js
) -> None:
    """Every GPU held by training: the non-waiting ask gets 409 at once and queues nothing."""
    await start_broker(FakeNvml(count=1))
    await train_lease(nc)
    placement = Placement(nc, node_id="n1")
    started = time.monotonic()
    ctx = await placement.acquire_now()
    assert time.monotonic() - started < 1.0
    assert ctx == mx.cpu() and placement.lease is None
    assert [k for k in await kv_keys(js, subjects.KV_QUEUE) if k.startswith("job.")] == []
    await placement.close()


async def test_a_queued_training_job_keeps_the_free_device_from_inference(start_broker, nc) -> None:
    """A trainer waiting for two GPUs while one is free: inference does not take that GPU."""
    await start_broker(FakeNvml(count=2))
    await train_lease(nc, "train-1", 1)  # one of two GPUs busy
    cmd = AcquireLease(job_id="train-2", holder="trainer-b", count=2)
    _, rejected = await request(nc, subjects.gpus_node_command("n1", "acquire"), cmd)
    assert rejected is not None and rejected.code == 409  # train-2 now waits in the queue
    placement = Placement(nc, node_id="n1")
    assert await placement.acquire_now() == mx.cpu() and placement.lease is None
    await placement.close()


async def test_a_node_with_cpu_slots_only_lends_inference_nothing(start_broker, nc, js) -> None:
    """CPU slots only: the broker refuses inference's ask, no slot is ever held (trainers need
    them), and inference does not ask again at once."""
    await start_broker(None, cpu_slots=1)
    placement = Placement(nc, node_id="n1")
    assert await placement.acquire_now() == mx.cpu() and placement.lease is None
    assert await lease_keys(js) == []
    await train_lease(nc)  # the slot is free for training
    placement.context()  # no new ask for a while: the node has no GPU
    assert not placement._busy()
    await placement.close()


async def test_an_idle_lease_is_renewed_then_given_back(start_broker, nc, js) -> None:
    """The lease outlives its 2 s TTL while used, and is released once idle."""
    await start_broker(FakeNvml(count=1))
    released: list[object] = []
    placement = Placement(nc, node_id="n1", idle_release=3.0, on_release=released.append)
    await placement.acquire_now()
    assert placement.lease is not None
    for _ in range(6):  # 3 s of use: longer than the TTL, so renewals kept it
        await asyncio.sleep(0.5)
        placement.context()
    assert placement.lease is not None and await lease_keys(js)
    for _ in range(100):
        if placement.lease is None:
            break
        await asyncio.sleep(0.1)
    assert placement.lease is None and placement.ctx == mx.cpu()
    for _ in range(20):
        if not await lease_keys(js):
            break
        await asyncio.sleep(0.1)
    assert not await lease_keys(js)
    await placement.close()


async def test_no_broker_means_the_cpu_at_once(nc) -> None:
    """Without a broker the first request is not delayed: the CPU, and the ask fails quietly."""
    placement = Placement(nc, node_id="n1")
    started = time.monotonic()
    assert placement.context() == mx.cpu()
    assert time.monotonic() - started < 0.05
    assert await placement.acquire_now() == mx.cpu() and placement.lease is None
    await placement.close()


@pytest.mark.parametrize("gpus", [0, 2])
async def test_inference_answers_while_training_holds_every_device(
    start_broker, nats_url, nc, js, tmp_path: Path, gpus: int
) -> None:
    """DIGITS's own test: every GPU (or CPU slot) leased to training, classify_one answers."""
    await start_broker(FakeNvml(count=gpus)) if gpus else await start_broker(None, cpu_slots=2)
    await train_lease(nc, "train-1", 2)
    await add_dataset(js, "d")
    await add_model(js, tmp_path / "nets", "m", "d", {1.0: NORMAL})
    settings = Settings(nats_url=nats_url, data_dir=str(tmp_path / "data"), port=-1, node_id="n1")
    host = ServiceHost(subjects.SERVICE_INFERENCE, nats_url, http_port=-1)
    task = asyncio.create_task(app.main(settings, host))
    try:
        for _ in range(500):
            if host.ready or task.done():
                break
            await asyncio.sleep(0.01)
        assert host.ready
        for _ in range(3):
            started = time.monotonic()
            body, rejected = await request(
                nc,
                subjects.CMD_INFERENCE_CLASSIFY_ONE,
                ClassifyOne(job_id="m", image=png(255), principal=ALICE),
            )
            assert rejected is None, rejected
            reply = codec.classify_reply.decode(body)
            assert isinstance(reply, Classified) and reply.predictions[0][0] == "bright"
            assert time.monotonic() - started < 3.0
        leased = await lease_keys(js)
        assert len(leased) == 2  # still training's two slots, nothing taken by inference
    finally:
        host.stop.set()
        await asyncio.wait_for(task, 10)
