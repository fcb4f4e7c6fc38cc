"""The inference service's HTTP routes: the network cache, classify-many jobs in flight, and
emptying the cache with the operator token."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from digits_inference import jobs
from digits_inference.settings import Settings
from digits_proto import codec, subjects
from digits_proto.inference import Classified, ClassifyMany, ClassifyManyQueued
from digits_proto.runtime import ServiceHost, put_bytes, request
from tests.fakes.principals import ALICE
from tests.inference.inprocess import running_inference
from tests.inference.test_service import NORMAL, REVERSED, add_dataset, add_model, classify, png

TOKEN = "inference-ops-token"


@pytest.fixture
async def service(nats_url: str, js, tmp_path: Path, monkeypatch) -> AsyncIterator[ServiceHost]:
    """The service in this process with its HTTP app on a free port; images under <tmp>/images."""
    monkeypatch.setenv("DIGITS_OPS_TOKEN", TOKEN)
    await add_dataset(js, "d")
    await add_model(js, tmp_path / "nets", "m", "d", {1.0: REVERSED, 2.0: NORMAL})
    images = tmp_path / "images"
    images.mkdir()
    for name, level in (("black", 0), ("white", 255)):
        (images / f"{name}.png").write_bytes(png(level))
    settings = Settings(
        nats_url=nats_url, data_dir=str(tmp_path / "data"), port=0, data_roots=[str(images)]
    )
    async with running_inference(settings, http_port=0) as host:
        yield host


def http(host: ServiceHost) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{host.bound_port}", timeout=30)


async def test_cache_lists_loaded_networks_and_their_bytes(service, nc) -> None:
    """Two snapshots classified: two networks, their parameter bytes, summed; also in /metrics."""
    async with http(service) as client:
        empty = (await client.get("/cache")).json()
        assert empty["networks"] == [] and empty["bytes"] == 0
        assert isinstance(await classify(nc, job_id="m", image=png(10)), Classified)
        assert isinstance(
            await classify(nc, job_id="m", image=png(10), snapshot_epoch=1.0), Classified
        )
        cache = (await client.get("/cache")).json()
        nets = cache["networks"]
        assert [(n["job_id"], n["epoch"], n["use"], n["device"]) for n in nets] == [
            ("m", 2.0, "classify", "cpu(0)"),
            ("m", 1.0, "classify", "cpu(0)"),
        ]
        assert all(n["bytes"] > 0 for n in nets) and cache["bytes"] == sum(n["bytes"] for n in nets)
        assert cache["loads"] == 2
        text = (await client.get("/metrics")).text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["digits_inference_cache_bytes"].samples[0].value == cache["bytes"]
    assert families["digits_inference_cache_networks"].samples[0].value == 2


async def test_emptying_the_cache_needs_the_operator_token(service, nc) -> None:
    """401 without the token, 403 with a wrong one; with it the cache is empty and the next
    request loads its network again."""
    assert isinstance(await classify(nc, job_id="m", image=png(10)), Classified)
    async with http(service) as client:
        assert (await client.delete("/cache")).status_code == 401
        wrong = await client.delete("/cache", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 403
        assert len((await client.get("/cache")).json()["networks"]) == 1
        r = await client.delete("/cache", headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 200 and r.json()["networks"] == 1 and r.json()["bytes"] > 0
        assert (await client.get("/cache")).json()["networks"] == []
    assert isinstance(await classify(nc, job_id="m", image=png(10)), Classified)
    assert service.metrics.value("nets_loaded") == 2


async def test_classify_many_jobs_in_flight_show_their_progress(
    service, nc, js, tmp_path, monkeypatch
) -> None:
    """A queued job held before its forward passes is listed with done/total, then leaves."""
    gate = asyncio.Event()
    entered = asyncio.Event()
    real = jobs._compute

    async def held(*args, **kwargs):
        entered.set()
        await gate.wait()
        return await real(*args, **kwargs)

    monkeypatch.setattr(jobs, "_compute", held)
    images = tmp_path / "images"
    listing = await put_bytes(
        js, subjects.BUCKET_UPLOADS, "lists/l.txt", b"black.png 0\nwhite.png 2\n"
    )
    cmd = ClassifyMany(
        principal=ALICE, job_id="m", image_list=listing, image_folder=str(images), background=True
    )
    body, rejected = await request(nc, subjects.CMD_INFERENCE_CLASSIFY_MANY, cmd, 30)
    assert rejected is None
    queued = codec.classify_many_reply.decode(body)
    assert isinstance(queued, ClassifyManyQueued)
    await asyncio.wait_for(entered.wait(), 30)
    async with http(service) as client:
        (running,) = (await client.get("/classify-many")).json()
        assert running["run_id"] == queued.run_id and running["job_id"] == "m"
        assert (running["done"], running["total"]) == (0, 2)
        gate.set()
        deadline = time.monotonic() + 30
        while (await client.get("/classify-many")).json():
            assert time.monotonic() < deadline, "the job never left the list"
            await asyncio.sleep(0.05)
