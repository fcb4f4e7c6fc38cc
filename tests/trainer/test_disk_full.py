"""A training run whose disk fills up (a real size-limited tmpfs) ends Error, clearly, at once."""

from __future__ import annotations

import asyncio
import errno
import time
from pathlib import Path

import mxnet as mx
import pytest
from mxnet import gluon

from digits_proto import subjects
from digits_proto.base import JobStatus
from digits_proto.models import AbortModel, TrainingFailed, TrainSpec
from digits_proto.runtime import request
from digits_trainer.checkpoints import Checkpoint, save_resume_point, save_snapshot
from digits_trainer.reports import WriteFailed, error_report
from tests.fakes.principals import ALICE
from tests.mounts import fill, tmpfs
from tests.trainer.test_service import (
    FakeBroker,
    add_dataset,
    create,
    status_is,
    trainer,
    wait_for,
    wait_for_progress,
)

pytestmark = pytest.mark.timeout(180)

NODE = "node-disk-full"


async def ticket_settled(js, timeout: float = 10.0):
    """The trainer's consumer once nothing is pending or unacked (the ACK lands just after the
    job's last event)."""
    deadline = time.monotonic() + timeout
    while True:
        info = await js.consumer_info(subjects.STREAM_WORK, subjects.CONSUMER_TRAINER)
        if info.num_ack_pending == 0 and info.num_pending == 0:
            return info
        assert time.monotonic() < deadline, info
        await asyncio.sleep(0.05)


async def released(broker: FakeBroker, timeout: float = 10.0) -> None:
    """Until the lease has been given back."""
    deadline = time.monotonic() + timeout
    while not broker.calls or broker.calls[-1] != "ReleaseLease":
        assert time.monotonic() < deadline, f"the lease was not released: {broker.calls}"
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("warm", [False, True], ids=["fresh-child", "spare-child"])
async def test_a_disk_filled_during_training_ends_the_job_error_naming_node_and_path(
    warm: bool, nats_url, js, nc, tmp_path: Path
):
    """The data dir (a 64 MiB tmpfs) fills up while the child trains: the job ends Error within
    seconds with "No space left on device", the node and a path under the data dir; the lease
    is released, the ticket ACKed (never redelivered), the job's folder removed; an abort then
    answers 403 "Job not aborted", never a 500."""
    broker = FakeBroker()
    await broker.serve(nc)
    dataset_id, _ = await add_dataset(js, tmp_path / "toy")
    with tmpfs(tmp_path / "data", size="64m") as data:
        async with trainer(nats_url, data, node_id=NODE, warm_child=warm, resume_every=0.5):
            reply = await create(nc, dataset_id, train_epochs=500)
            await wait_for_progress(js, reply.id)
            filler = fill(data)
            events = await wait_for(js, reply.id, status_is(JobStatus.ERROR), timeout=60)
            failed = events[-1]
            assert isinstance(failed, TrainingFailed)
            assert "No space left on device" in failed.error, failed.error
            assert f"on node {NODE}" in failed.error, failed.error
            assert f"{data}/trainer/jobs/{reply.id}/" in failed.error, failed.error
            await released(broker)
            info = await ticket_settled(js)
            assert info.num_redelivered == 0
            assert not (data / "trainer" / "jobs" / reply.id).exists()
            _, rejected = await request(
                nc, subjects.CMD_MODELS_ABORT, AbortModel(model_id=reply.id, principal=ALICE)
            )
            assert rejected is not None and rejected.code == 403, rejected
            filler.unlink()
    stored = await js.object_store(subjects.BUCKET_MODELS)
    text = (await stored.get(f"{reply.id}/train.log")).data.decode()
    assert "training failed: " in text and "No space left on device" in text


async def test_abort_while_the_disk_is_full_answers_and_ends_the_job(nats_url, js, nc, tmp_path):
    """With the data dir full (training on, its next write not yet due) an abort answers
    Accepted and the job ends Aborted: the lease released, the ticket ACKed."""
    broker = FakeBroker()
    await broker.serve(nc)
    dataset_id, _ = await add_dataset(js, tmp_path / "toy")
    with tmpfs(tmp_path / "data", size="64m") as data:
        async with trainer(nats_url, data, node_id=NODE, resume_every=0):
            reply = await create(nc, dataset_id, train_epochs=500)
            await wait_for_progress(js, reply.id)
            filler = fill(data)
            _, rejected = await request(
                nc, subjects.CMD_MODELS_ABORT, AbortModel(model_id=reply.id, principal=ALICE)
            )
            assert rejected is None, rejected
            await wait_for(js, reply.id, status_is(JobStatus.ABORTED), timeout=10)
            await released(broker)
            assert (await ticket_settled(js)).num_redelivered == 0
            filler.unlink()


async def test_a_job_starting_on_a_full_disk_ends_error_naming_the_cache_file(
    nats_url, js, nc, tmp_path
):
    """The data dir is full before the job's data is fetched: the job ends Error naming the
    cache file it could not write and the node (not a "Data:" traceback, not a redelivery); its
    log, which the disk refused, still reaches the bucket."""
    broker = FakeBroker()
    await broker.serve(nc)
    dataset_id, _ = await add_dataset(js, tmp_path / "toy")
    with tmpfs(tmp_path / "data", size="16m") as data:
        async with trainer(nats_url, data, node_id=NODE):
            filler = fill(data)
            reply = await create(nc, dataset_id, train_epochs=1)
            events = await wait_for(js, reply.id, status_is(JobStatus.ERROR), timeout=30)
            failed = events[-1]
            assert isinstance(failed, TrainingFailed)
            assert failed.error.startswith(f"No space left on device writing {data}/cache/")
            assert failed.error.endswith(f" on node {NODE}"), failed.error
            await released(broker)
            assert (await ticket_settled(js)).num_redelivered == 0
            filler.unlink()
    stored = await js.object_store(subjects.BUCKET_MODELS)
    text = (await stored.get(f"{reply.id}/train.log")).data.decode()
    assert f"training failed: {failed.error}" in text


def test_snapshot_and_resume_point_on_a_full_disk_name_the_file_and_leave_nothing(tmp_path):
    """On a full tmpfs MXNet's writers fail a bare CHECK ("fwrite"): save_snapshot and
    save_resume_point raise WriteFailed "No space left on device writing <file>" instead, and
    leave no partial file behind."""
    net = gluon.nn.HybridSequential()
    net.add(gluon.nn.Dense(300, in_units=300))  # ~360 kB of weights: more than is left
    net.initialize()
    net.hybridize()
    net(mx.nd.zeros((1, 300)))
    trainer_ = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1, "momentum": 0.9})
    checkpoint = Checkpoint(
        model_id="m",
        dataset_id="d",
        spec=TrainSpec(),
        epoch=1.0,
        iteration=7,
        max_iteration=9,
        seed=1,
        input_shape=[300],
    )
    with tmpfs(tmp_path / "full", size="1m") as data:
        work = data / "work"
        work.mkdir()
        filler = fill(data)
        with pytest.raises(WriteFailed) as snapshot:
            save_snapshot(net, trainer_, work, checkpoint)
        with pytest.raises(WriteFailed) as point:
            save_resume_point(net, trainer_, work, checkpoint)
        left = sorted(p.name for p in work.rglob("*"))
        filler.unlink()
    assert str(snapshot.value) == f"No space left on device writing {work}/1/net-0000.params"
    assert str(point.value) == f"No space left on device writing {work}/resume-7.ckpt"
    assert left == []


def test_a_full_disk_under_the_log_stream_names_the_job_folder(tmp_path, monkeypatch):
    """The child's own log (its stderr, a file in the job's folder) hits the full disk: such a
    write names no file, so the report names the job's folder (the child's working folder)."""
    monkeypatch.chdir(tmp_path)
    report = error_report(OSError(errno.ENOSPC, "No space left on device"))
    assert (report.path, report.reason) == (str(tmp_path), "No space left on device")
    assert report.message == f"No space left on device writing {tmp_path}"
