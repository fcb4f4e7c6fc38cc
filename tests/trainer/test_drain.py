"""Draining a trainer node: its jobs continue on another node from a resume point taken at the
drain, and it takes no ticket until undrained. Two trainers on one real nats-server, real MXNet."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from digits_proto import codec, subjects
from digits_proto.base import JobStatus
from digits_proto.models import MetricsRecorded, TrainingFailed, TrainingStarted
from digits_proto.runtime import EventStore, ServiceHost
from digits_trainer import app
from digits_trainer.settings import Settings
from tests.trainer.test_service import (
    FakeBroker,
    add_dataset,
    create,
    status_is,
    stored_log,
    wait_for,
)

pytestmark = pytest.mark.timeout(240)


@contextlib.asynccontextmanager
async def node(nats_url: str, data_dir: Path, node_id: str) -> AsyncIterator[httpx.AsyncClient]:
    """A trainer node in this process with its HTTP app on a free port; yields a client of
    that app carrying the node's operator token."""
    settings = Settings(
        nats_url=nats_url,
        data_dir=str(data_dir),
        node_id=node_id,
        retry_delay=0.2,
        next_retry_delay=0.2,
        near_retry_delay=0.5,
        far_retry_delay=0.5,
        progress_every=0.5,
        concurrent_jobs=1,
        sandbox_warm=False,
        warm_child=False,
        # No point is due by the clock: the one a job continues from is the drain's.
        resume_every=3600.0,
        drain_wait=60.0,
    )
    host = ServiceHost(subjects.SERVICE_TRAINER, nats_url, http_port=0, data_dir=data_dir)
    task = asyncio.create_task(app.main(settings, host))
    deadline = time.monotonic() + 20
    while not host.ready:
        assert time.monotonic() < deadline and not task.done(), "trainer did not start"
        await asyncio.sleep(0.02)
    token = (data_dir / "ops-token").read_text().strip()
    client = httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{host.bound_port}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=120,
    )
    try:
        yield client
    finally:
        await client.aclose()
        await host.nc.close()  # see tests/trainer/test_service.py: trainer()
        host.stop.set()
        await asyncio.wait_for(task, 20)


async def poll_json(client: httpx.AsyncClient, path: str, done, timeout: float = 60.0):
    """GET `path` until `done(json)`; returns that JSON."""
    deadline = time.monotonic() + timeout
    while True:
        body = (await client.get(path)).json()
        if done(body):
            return body
        assert time.monotonic() < deadline, body
        await asyncio.sleep(0.1)


def starts(events: list) -> list[TrainingStarted]:
    return [e for e in events if isinstance(e, TrainingStarted)]


async def test_a_drained_node_hands_its_job_to_another_node_from_a_resume_point(
    nats_url, js, nc, tmp_path
):
    """Node A trains a job; POST /drain on A snapshots it at a resume point and hands it back;
    node B continues it from that point to Done (no metric point twice, nothing failed); A is
    not ready ("draining") and a job created meanwhile runs on B; DELETE /drain undrains A."""
    broker = FakeBroker()
    await broker.serve(nc)
    dataset_id, _ = await add_dataset(js, tmp_path / "toy")
    async with node(nats_url, tmp_path / "a", "node-a") as a:
        assert (await a.get("/ready")).status_code == 200
        reply = await create(nc, dataset_id, train_epochs=8, val_interval=1, snapshot_interval=0)
        jobs = await poll_json(a, "/jobs", lambda js_: js_ and js_[0]["epoch"] >= 1.0)
        assert jobs[0]["model_id"] == reply.id and jobs[0]["pid"] and jobs[0]["lease_id"]
        assert jobs[0]["images_per_second"] > 0 and jobs[0]["lease_expires_at"]
        assert "digits_trainer_jobs_running 1.0" in (await a.get("/metrics")).text
        model = (await a.get(f"/models/{reply.id}")).json()
        assert model["state"]["status"] == "Running" and model["sequence"] > 0

        async with node(nats_url, tmp_path / "b", "node-b") as b:
            assert (await a.post("/drain", headers={"Authorization": ""})).status_code == 401
            drained = await a.post("/drain")
            assert drained.status_code == 200, drained.text
            body = drained.json()
            assert body["draining"] and body["running"] == []
            [handed] = body["handed_back"]
            point = handed["resume_point"]
            assert handed["model_id"] == reply.id and handed["ended"] == "handed back"
            assert point["kind"] == "resume point" and point["epoch"] >= 1.0
            assert (await a.post("/drain")).json()["handed_back"] == body["handed_back"]
            assert "digits_trainer_draining 1.0" in (await a.get("/metrics")).text
            ready = await a.get("/ready")
            assert ready.status_code == 503 and "draining" in ready.json()["waiting_for"]
            assert "ReleaseLease" in broker.calls
            on_b = await poll_json(b, "/jobs", lambda jobs: bool(jobs))
            assert [(j["model_id"], j["attempt"]) for j in on_b] == [(reply.id, 2)]

            events = await wait_for(js, reply.id, status_is(JobStatus.DONE), timeout=150)
            first, second = starts(events)
            assert (first.node_id, second.node_id) == ("node-a", "node-b")
            assert second.attempt == 2 and second.resume_epoch == point["epoch"]
            assert not any(isinstance(e, TrainingFailed) for e in events)
            log = await stored_log(js, reply.id)
            assert "training handed back" in log
            assert f"resuming from the resume point at epoch {point['epoch']:g}" in log

            # Drained, A takes no ticket: the next job trains on B.
            other = await create(nc, dataset_id, train_epochs=1)
            later = await wait_for(js, other.id, status_is(JobStatus.DONE), timeout=90)
            assert [s.node_id for s in starts(later)] == ["node-b"]

        metrics = EventStore(js, subjects.STREAM_METRICS, codec.metric_events)
        series, _ = await metrics.load(subjects.model_metrics(reply.id))
        for phase in ("train", "val"):
            its = [
                p.iteration for p in series if isinstance(p, MetricsRecorded) and p.phase == phase
            ]
            assert its == sorted(set(its)), phase

        undrained = await a.delete("/drain")
        assert undrained.status_code == 200 and not undrained.json()["draining"]
        assert (await a.get("/ready")).status_code == 200
        again = await create(nc, dataset_id, train_epochs=1)
        back = await wait_for(js, again.id, status_is(JobStatus.DONE), timeout=90)
        assert [s.node_id for s in starts(back)] == ["node-a"]


async def test_read_routes_answer_404_for_unknown_or_malformed_ids(nats_url, nc, tmp_path):
    """GET /models/{id} and /jobs/{id}: 404 for an unknown id and for one the bus would refuse;
    /jobs is empty and /drain says the node takes tickets."""
    await FakeBroker().serve(nc)
    async with node(nats_url, tmp_path / "a", "node-a") as a:
        for path in ("/models/20260101-000000-abcd", "/models/a.b", "/jobs/nope", "/jobs/a*b"):
            answer = await a.get(path)
            assert answer.status_code == 404, (path, answer.text)
        assert (await a.get("/jobs")).json() == []
        status = (await a.get("/drain")).json()
        assert status["node_id"] == "node-a" and not status["draining"]
        assert (await a.delete("/drain", headers={"Authorization": "Bearer x"})).status_code == 403
