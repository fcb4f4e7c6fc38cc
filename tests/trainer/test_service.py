"""The trainer service against a real nats-server, with a fake gpu-broker endpoint."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from nats.aio.client import Client
from nats.js.errors import NotFoundError

from digits_proto import codec, new_job_id, subjects
from digits_proto.base import JobStatus, Principal
from digits_proto.datasets import DatasetBuilt, DatasetCreated, DatasetSpec, SplitBlobs
from digits_proto.gpus import Device, LeaseAccepted
from digits_proto.models import (
    AbortModel,
    CreateModel,
    DeleteModel,
    MetricsRecorded,
    ModelAborted,
    ModelWaiting,
    SnapshotSaved,
    TrainingCompleted,
    TrainingFailed,
    TrainingProgressed,
    TrainingStarted,
    TrainSpec,
)
from digits_proto.replies import Accepted
from digits_proto.runtime import (
    Conflict,
    EventStore,
    ServiceHost,
    put_file,
    request,
    serve_endpoints,
)
from digits_trainer import app
from digits_trainer.domain import fold_model
from digits_trainer.settings import Settings
from tests.fakes.principals import ALICE
from tests.trainer.toy import LABELS, write_dataset

pytestmark = pytest.mark.timeout(120)


class FakeBroker:
    """A minimal gpu-broker: each acquire gets one CPU slot (or a 409 when busy); calls noted."""

    def __init__(self, busy: bool = False) -> None:
        self.calls: list[str] = []
        self.busy = busy

    async def serve(self, nc: Client) -> None:
        async def answer(command) -> LeaseAccepted:
            self.calls.append(type(command).__name__)
            if self.busy:
                raise Conflict("all devices are leased")
            return LeaseAccepted(
                lease_id=getattr(command, "lease_id", "") or uuid.uuid4().hex,
                node_id="test-node",
                devices=[Device(device_id="test-node/cpu0", kind="cpu", index=0)],
                threads=2,
                ttl_seconds=1.5,
            )

        await serve_endpoints(
            nc,
            subjects.SERVICE_GPU_BROKER,
            codec.gpu_commands,
            {
                s: answer
                for s in (
                    subjects.CMD_GPUS_ACQUIRE,
                    subjects.CMD_GPUS_RENEW,
                    subjects.CMD_GPUS_RELEASE,
                )
            },
        )


@contextlib.asynccontextmanager
async def trainer(
    nats_url: str, data_dir: Path, warm: bool = False, **settings_: object
) -> AsyncIterator[ServiceHost]:
    """The trainer service running in this process until the block ends (`warm`: with a
    sandbox child ready for custom networks; other settings as given)."""
    settings = Settings(
        nats_url=nats_url,
        data_dir=str(data_dir),
        port=-1,
        retry_delay=0.2,
        next_retry_delay=0.2,  # a job waiting for devices asks again soon, whatever its place
        near_retry_delay=0.5,
        far_retry_delay=0.5,
        progress_every=0.5,
        sandbox_warm=warm,
        **settings_,  # pyright: ignore[reportArgumentType]
    )
    host = ServiceHost(subjects.SERVICE_TRAINER, nats_url, http_port=-1)
    task = asyncio.create_task(app.main(settings, host))
    deadline = time.monotonic() + 10
    while not host.ready:
        assert time.monotonic() < deadline and not task.done(), "trainer did not start"
        await asyncio.sleep(0.02)
    try:
        yield host
    finally:
        # Close before stopping: host.close()'s nc.drain() would wait out its 30 s timeout on the
        # ticket loops' pull subscriptions (nats-py never marks a stale fetch status message done).
        await host.nc.close()
        host.stop.set()
        await asyncio.wait_for(task, 15)


async def add_dataset(
    js, folder: Path, built: bool = True, corrupt: bool = False
) -> tuple[str, DatasetBuilt]:
    """Upload a toy dataset's blobs and append its events by hand, as the datasets service would."""
    dataset_id = new_job_id()
    files = write_dataset(folder, corrupt=corrupt)
    refs = {
        name: await put_file(js, subjects.BUCKET_DATASETS, f"{dataset_id}/{name}", path)
        for name, path in files.items()
    }
    splits = [
        SplitBlobs(split=s, entries=n, rec=refs[f"{s}.rec"], idx=refs[f"{s}.idx"])
        for s, n in (("train", 120), ("val", 30))
    ]
    event = DatasetBuilt(
        dataset_id=dataset_id,
        labels=LABELS,
        labels_blob=refs["labels.txt"],
        splits=splits,
        mean=refs["mean.npy"],
        mean_jpg=refs["mean.npy"],
        image_width=28,
        image_height=28,
        image_channels=1,
    )
    store = EventStore(js, subjects.STREAM_DATASETS, codec.dataset_events)
    spec = DatasetSpec(folder_train="/toy", resize_width=28, resize_height=28, resize_channels=1)
    created = DatasetCreated(dataset_id=dataset_id, name="toy", spec=spec)
    await store.append(
        subjects.dataset_events(dataset_id), [created, *([event] if built else [])], 0
    )
    return dataset_id, event


async def create(nc, dataset_id: str, who: Principal = ALICE, **spec) -> Accepted:
    """CreateModel through the endpoint, sent by `who`; the reply must be Accepted."""
    spec = {"train_epochs": 1, "random_seed": 1, "lr_policy": "fixed", **spec}
    command = CreateModel(
        name="toy lenet", dataset_id=dataset_id, spec=TrainSpec(**spec), principal=who
    )
    body, rejected = await request(nc, subjects.CMD_MODELS_CREATE, command)
    assert rejected is None, rejected
    reply = codec.command_reply.decode(body)
    assert isinstance(reply, Accepted) and reply.stream == subjects.STREAM_MODELS
    return reply


async def wait_for(js, model_id: str, done: Callable[[list], bool], timeout: float = 60.0) -> list:
    """Poll the job's events until `done(events)`."""
    store = EventStore(js, subjects.STREAM_MODELS, codec.model_events)
    deadline = time.monotonic() + timeout
    while True:
        events, _ = await store.load(subjects.model_events(model_id))
        if done(events):
            return events
        # the last event names why, e.g. a TrainingFailed's error
        assert time.monotonic() < deadline, ([type(e).__name__ for e in events], events[-1:])
        await asyncio.sleep(0.1)


async def stored_log(js, model_id: str) -> str:
    """A job's log as the gateway serves it (the copy in the models bucket)."""
    bucket = await js.object_store(subjects.BUCKET_MODELS)
    return (await bucket.get(f"{model_id}/train.log")).data.decode()


async def last_progress(js, model_id: str) -> TrainingProgressed | None:
    """The job's latest progress event (its own subject on the progress stream), None if none."""
    try:
        msg = await js.get_last_msg(subjects.STREAM_PROGRESS, subjects.model_progress(model_id))
    except NotFoundError:
        return None
    return codec.progress_events.decode(msg.data)


async def wait_for_progress(js, model_id: str, timeout: float = 60.0) -> TrainingProgressed:
    """Poll until the job has reported progress."""
    deadline = time.monotonic() + timeout
    while (progress := await last_progress(js, model_id)) is None:
        assert time.monotonic() < deadline, "no progress reported"
        await asyncio.sleep(0.1)
    return progress


def status_is(status: JobStatus) -> Callable[[list], bool]:
    return lambda events: bool(events) and fold_model(events).status is status


def children_of_job(model_id: str) -> list[int]:
    """Pids of training children whose command line names this job's folder, or that work in
    it (a spare child given this job: its command line is `... child --wait`)."""
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            if b"digits_trainer.child" not in cmdline:
                continue
            if model_id.encode() in cmdline or model_id in os.readlink(f"/proc/{pid}/cwd"):
                pids.append(int(pid))
    return pids


async def wait_for_child(model_id: str, timeout: float = 10.0) -> None:
    """Until a training child of this job runs."""
    deadline = time.monotonic() + timeout
    while not children_of_job(model_id):
        assert time.monotonic() < deadline, "no training child started"
        await asyncio.sleep(0.05)


async def test_a_job_trains_to_done_with_snapshots_metrics_and_blobs(nats_url, js, nc, tmp_path):
    """CreateModel → Running → Done, a snapshot in the bucket, metrics recorded, lease released;
    then DeleteModel removes the blobs and the metric series."""
    broker = FakeBroker()
    await broker.serve(nc)
    dataset_id, _ = await add_dataset(js, tmp_path / "toy")
    async with trainer(nats_url, tmp_path / "data"):
        reply = await create(nc, dataset_id, train_epochs=2, crop_size=24)
        events = await wait_for(js, reply.id, status_is(JobStatus.DONE))

        kinds = [type(e) for e in events]
        assert kinds.count(TrainingStarted) == 1 and kinds[-1] is TrainingCompleted
        assert TrainingProgressed not in kinds  # progress has its own subject (the last few kept)
        assert isinstance(await last_progress(js, reply.id), TrainingProgressed)
        snapshots = [e for e in events if isinstance(e, SnapshotSaved)]
        assert [s.epoch for s in snapshots] == [1.0, 2.0]
        assert snapshots[0].input_shape == [1, 24, 24]
        bucket = await js.object_store(subjects.BUCKET_MODELS)
        prefix = f"{reply.id}/snapshot-2"
        names = {info.name for info in await bucket.list()}
        assert {f"{prefix}-symbol.json", f"{prefix}.params", f"{prefix}.state"} <= names
        metrics = EventStore(js, subjects.STREAM_METRICS, codec.metric_events)
        points, _ = await metrics.load(subjects.model_metrics(reply.id))
        assert all(isinstance(p, MetricsRecorded) for p in points)
        assert {p.phase for p in points} == {"train", "val"}
        assert broker.calls[0] == "AcquireLease"
        # The lease goes back once the attempt has wound down (after the job says Done).
        deadline = time.monotonic() + 30
        while broker.calls[-1] != "ReleaseLease":
            assert time.monotonic() < deadline, broker.calls
            await asyncio.sleep(0.05)

        delete = DeleteModel(model_id=reply.id, principal=ALICE)
        _, rejected = await request(nc, subjects.CMD_MODELS_DELETE, delete)
        assert rejected is None
        assert (await metrics.load(subjects.model_metrics(reply.id)))[0] == []
        with contextlib.suppress(NotFoundError):  # nats-py raises it for an empty bucket
            left = [i.name for i in await bucket.list() if not i.deleted]
            assert not [name for name in left if name.startswith(reply.id)]
        _, rejected = await request(nc, subjects.CMD_MODELS_DELETE, delete)
        assert rejected is not None and rejected.code == 404


async def test_abort_during_training_stops_the_child(nats_url, js, nc, tmp_path):
    """An abort while the child trains ends the job Aborted and the child process is gone."""
    await FakeBroker().serve(nc)
    dataset_id, _ = await add_dataset(js, tmp_path / "toy")
    async with trainer(nats_url, tmp_path / "data"):
        reply = await create(nc, dataset_id, train_epochs=200)
        await wait_for_progress(js, reply.id)
        assert children_of_job(reply.id)
        _, rejected = await request(
            nc, subjects.CMD_MODELS_ABORT, AbortModel(model_id=reply.id, principal=ALICE)
        )
        assert rejected is None
        await wait_for(js, reply.id, status_is(JobStatus.ABORTED), timeout=5)
        deadline = time.monotonic() + 5
        while children_of_job(reply.id):
            assert time.monotonic() < deadline, "the training child survived the abort"
            await asyncio.sleep(0.1)
        _, rejected = await request(
            nc, subjects.CMD_MODELS_ABORT, AbortModel(model_id=reply.id, principal=ALICE)
        )
        assert rejected is not None and rejected.code == 403


async def test_a_child_error_fails_the_job_naming_the_cause(nats_url, js, nc, tmp_path):
    """A record that is not an image ends the job in Error with the child's message."""
    broker = FakeBroker()
    await broker.serve(nc)
    dataset_id, _ = await add_dataset(js, tmp_path / "toy", corrupt=True)
    async with trainer(nats_url, tmp_path / "data"):
        reply = await create(nc, dataset_id)
        events = await wait_for(js, reply.id, status_is(JobStatus.ERROR))
        # The lease is given back after the job's end is recorded: wait for it, bounded.
        deadline = time.monotonic() + 10
        while broker.calls[-1] != "ReleaseLease":
            assert time.monotonic() < deadline, f"no release after the job ended: {broker.calls}"
            await asyncio.sleep(0.05)
    assert isinstance(events[-1], TrainingFailed)
    assert "train.rec record 119: not a readable png image" in events[-1].error
    assert not list((tmp_path / "data" / "trainer" / "jobs").glob("*/train.log"))  # it ended
    stored = await js.object_store(subjects.BUCKET_MODELS)  # what the gateway serves
    text = (await stored.get(f"{reply.id}/train.log")).data.decode()
    assert "Traceback" in text and "training failed: " in text.splitlines()[-1]


async def test_create_refuses_an_unknown_dataset_or_an_unavailable_network(
    nats_url, js, nc, tmp_path
):
    """Unknown dataset → 400 on `dataset`; AlexNet → 400 on `standard_networks`; an id that is
    no subject token → 404 on `dataset_id` (the micro edge); bad job ids → 404."""
    dataset_id, _ = await add_dataset(js, tmp_path / "toy")
    async with trainer(nats_url, tmp_path / "data"):
        for ds, spec, code, field in (
            ("20990101-000000-dead", TrainSpec(), 400, "dataset"),
            ("digits.>", TrainSpec(), 404, "dataset_id"),
            (dataset_id, TrainSpec(standard_network="alexnet"), 400, "standard_networks"),
        ):
            command = CreateModel(name="x", dataset_id=ds, spec=spec, principal=ALICE)
            _, rejected = await request(nc, subjects.CMD_MODELS_CREATE, command)
            assert rejected is not None and (rejected.code, rejected.field) == (code, field)
        _, rejected = await request(
            nc, subjects.CMD_MODELS_DELETE, DeleteModel(model_id="nope", principal=ALICE)
        )
        assert rejected is not None and rejected.code == 404


async def test_job_waits_for_its_dataset_then_trains_once_it_is_built(nats_url, js, nc, tmp_path):
    """While the dataset builds the job says Waiting once; DatasetBuilt lets it run; stopping
    the service stops the child."""
    await FakeBroker().serve(nc)
    dataset_id, built = await add_dataset(js, tmp_path / "toy", built=False)
    async with trainer(nats_url, tmp_path / "data"):
        reply = await create(nc, dataset_id)
        await wait_for(js, reply.id, status_is(JobStatus.WAITING))
        await asyncio.sleep(0.6)  # several redeliveries of the ticket
        store = EventStore(js, subjects.STREAM_DATASETS, codec.dataset_events)
        subject = subjects.dataset_events(dataset_id)
        await store.append(subject, [built], (await store.load(subject))[1])
        events = await wait_for(js, reply.id, status_is(JobStatus.RUNNING))
        await wait_for_child(reply.id)
    waits = [e.reason for e in events if isinstance(e, ModelWaiting)]
    assert waits == [f"Waiting for dataset {dataset_id}"]
    assert not children_of_job(reply.id), "stopping the service must stop its training child"


@pytest.mark.parametrize("broker", ["absent", "busy"])
async def test_job_waits_for_devices_and_can_be_aborted(broker, nats_url, js, nc, tmp_path):
    """No gpu-broker, or one answering 409 → Waiting for devices (said once); abort works."""
    if broker == "busy":
        await FakeBroker(busy=True).serve(nc)
    dataset_id, _ = await add_dataset(js, tmp_path / "toy")
    async with trainer(nats_url, tmp_path / "data"):
        reply = await create(nc, dataset_id)
        await wait_for(js, reply.id, status_is(JobStatus.WAITING))
        await asyncio.sleep(0.6)
        _, rejected = await request(
            nc, subjects.CMD_MODELS_ABORT, AbortModel(model_id=reply.id, principal=ALICE)
        )
        assert rejected is None
        events = await wait_for(js, reply.id, status_is(JobStatus.ABORTED))
    assert [e.reason for e in events if isinstance(e, ModelWaiting)] == ["Waiting for devices"]
    assert isinstance(events[-1], ModelAborted)
