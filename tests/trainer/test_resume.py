"""Automatic resume: a trainer that dies mid-run is replaced and the job finishes from its last
snapshot, with no metric point repeated."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest

from digits_proto import codec, subjects
from digits_proto.base import JobStatus
from digits_proto.models import (
    MetricsRecorded,
    SnapshotDeleted,
    SnapshotSaved,
    TrainingCompleted,
    TrainingFailed,
    TrainingStarted,
)
from digits_proto.runtime import EventStore, ServiceHost
from digits_trainer import app
from digits_trainer.domain import fold_model
from digits_trainer.settings import Settings
from tests.trainer.test_service import (
    FakeBroker,
    add_dataset,
    children_of_job,
    create,
    status_is,
    wait_for,
)

pytestmark = pytest.mark.timeout(120)


async def start_trainer(
    nats_url: str, data_dir: Path, resume_every: float = 0.0
) -> tuple[ServiceHost, asyncio.Task]:
    """A trainer service in this process whose tickets come back 2 s after it dies (resume
    points off unless `resume_every` is set: this file's test resumes from a snapshot)."""
    settings = Settings(
        nats_url=nats_url,
        data_dir=str(data_dir),
        port=-1,
        retry_delay=0.2,
        next_retry_delay=0.2,  # a job waiting for devices asks again soon, whatever its place
        near_retry_delay=0.5,
        far_retry_delay=0.5,
        progress_every=0.5,
        ack_wait=2.0,
        concurrent_jobs=1,
        resume_every=resume_every,
    )
    host = ServiceHost(subjects.SERVICE_TRAINER, nats_url, http_port=-1)
    task = asyncio.create_task(app.main(settings, host))
    deadline = time.monotonic() + 20
    while not host.ready:
        assert time.monotonic() < deadline and not task.done(), "trainer did not start"
        await asyncio.sleep(0.02)
    return host, task


async def test_a_job_whose_trainer_dies_resumes_from_its_last_snapshot_on_another(
    nats_url, js, nc, tmp_path
):
    """Trainer A dies (connection gone without an ack, child SIGKILLed) after a snapshot;
    trainer B gets the redelivered ticket, starts attempt 2 at that snapshot's epoch and
    finishes; each metric phase's iterations strictly increase."""
    await FakeBroker().serve(nc)
    dataset_id, _ = await add_dataset(js, tmp_path / "toy")
    host_a, task_a = await start_trainer(nats_url, tmp_path / "a")
    reply = await create(
        nc, dataset_id, train_epochs=12, snapshot_interval=2, val_interval=1, snapshot_keep=2
    )
    await wait_for(js, reply.id, lambda ev: any(isinstance(e, SnapshotSaved) for e in ev))
    # The trainer dies: its connection goes without acking the ticket, its child is killed.
    children = children_of_job(reply.id)
    await host_a.nc.close()
    for pid in children:
        os.kill(pid, signal.SIGKILL)
    host_a.stop.set()
    await asyncio.wait_for(task_a, 15)
    dead = await wait_for(js, reply.id, lambda ev: True)
    assert fold_model(dead).status is JobStatus.RUNNING, "a dead trainer must not end the job"

    host_b, task_b = await start_trainer(nats_url, tmp_path / "b")
    try:
        events = await wait_for(js, reply.id, status_is(JobStatus.DONE), timeout=90)
    finally:
        await host_b.nc.close()
        host_b.stop.set()
        await asyncio.wait_for(task_b, 15)

    starts = [e for e in events if isinstance(e, TrainingStarted)]
    assert [s.attempt for s in starts] == [1, 2]
    before = events[: events.index(starts[1])]
    resumed_from = [e for e in before if isinstance(e, SnapshotSaved)][-1].epoch
    assert starts[1].resume_epoch == resumed_from > 0
    assert not any(isinstance(e, TrainingFailed) for e in events)
    assert isinstance(events[-1], TrainingCompleted)
    after = [e.epoch for e in events[events.index(starts[1]) :] if isinstance(e, SnapshotSaved)]
    assert after and after[0] > resumed_from and after[-1] == 12.0

    # Retention: the last two snapshots plus the best survive, the others are gone for good.
    state = fold_model(events)
    deleted = [e.epoch for e in events if isinstance(e, SnapshotDeleted)]
    assert deleted and 12.0 in state.snapshots and len(state.snapshots) <= 3
    bucket = await js.object_store(subjects.BUCKET_MODELS)
    names = {i.name for i in await bucket.list() if not i.deleted and i.name.endswith(".params")}
    assert names == {f"{reply.id}/snapshot-{e:g}.params" for e in state.snapshots}

    metrics = EventStore(js, subjects.STREAM_METRICS, codec.metric_events)
    points, _ = await metrics.load(subjects.model_metrics(reply.id))
    for phase in ("train", "val"):
        iterations = [
            p.iteration for p in points if isinstance(p, MetricsRecorded) and p.phase == phase
        ]
        assert iterations == sorted(set(iterations)), phase
    val_epochs = [p.epoch for p in points if p.phase == "val"]
    assert val_epochs == [float(e) for e in range(1, 13)]

    # The raw log: attempt 2 (another node, another disk) continued attempt 1's stored log.
    log = (await bucket.get(f"{reply.id}/train.log")).data.decode()
    first, second = log.index(f"attempt 1 of {reply.id}"), log.index(f"attempt 2 of {reply.id}")
    assert first < log.index("data loaded") < second  # attempt 1's lines were kept
    assert f"resuming from the snapshot at epoch {resumed_from:g}" in log[second:]
    assert log.rstrip().endswith("training completed")
