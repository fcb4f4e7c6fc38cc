"""A lab's recorded history, published straight to the streams: `jobs` LeNet jobs' worth of
events as the services write them (datasets built, jobs queued in waves, leased, trained with
metrics, progress and snapshots; some aborted, edited or deleted). Shared by the rebuild test
and `bench/projection.py`."""

from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta

from nats.js import JetStreamContext

from digits_proto import codec, subjects, utcnow
from digits_proto.base import BlobRef, Role
from digits_proto.datasets import (
    DatasetBuildStarted,
    DatasetBuilt,
    DatasetCreated,
    DatasetFolderParsed,
    DatasetProgressed,
    DatasetSpec,
    SplitBlobs,
)
from digits_proto.gpus import (
    Device,
    DevicesDiscovered,
    LeaseGranted,
    LeaseReleased,
    QueueChanged,
    QueueEntry,
)
from digits_proto.models import (
    MetricsRecorded,
    ModelAborted,
    ModelCreated,
    ModelDeleted,
    ModelEdited,
    ModelWaiting,
    SnapshotSaved,
    TrainingCompleted,
    TrainingProgressed,
    TrainingStarted,
    TrainSpec,
)
from digits_proto.users import UserCreated

NODE = "node-1"
WAVE = 50  # jobs submitted at once: each QueueChanged carries the whole waiting queue
USERS = ("alice", "bob", "carol")
FORM = {f"field_{i}": str(i) for i in range(40)}  # the saved form, as the UI posts it


def _blob(name: str) -> BlobRef:
    return BlobRef(bucket=subjects.BUCKET_MODELS, name=name, digest="0" * 64, size=431_000)


def _dataset(i: int, at) -> list[tuple[str, object]]:
    ds = f"ds{i:04d}"
    subject = subjects.dataset_events(ds)
    split = SplitBlobs(
        split="train", rec=_blob(f"{ds}/train.rec"), idx=_blob(f"{ds}/train.idx"), entries=340
    )
    out: list[tuple[str, object]] = [
        (
            subject,
            DatasetCreated(
                dataset_id=ds,
                name=f"digits {i}",
                username="alice",
                actor="alice",
                spec=DatasetSpec(folder_train="/data/mnist"),
                form=FORM,
                occurred_at=at,
            ),
        ),
        (subject, DatasetBuildStarted(dataset_id=ds, worker="w1", occurred_at=at)),
        (
            subject,
            DatasetFolderParsed(
                dataset_id=ds,
                folder="/data/mnist",
                labels=[str(d) for d in range(10)],
                split_counts={"train": 340, "val": 110},
                occurred_at=at,
            ),
        ),
    ]
    for phase, total in (("train", 340), ("val", 110)):
        for done in range(0, total + 1, 34):
            out.append(
                (
                    subject,
                    DatasetProgressed(
                        dataset_id=ds, phase=phase, done=done, total=total, occurred_at=at
                    ),
                )
            )
    out.append(
        (
            subject,
            DatasetBuilt(
                dataset_id=ds,
                labels=[str(d) for d in range(10)],
                labels_blob=_blob(f"{ds}/labels"),
                splits=[split],
                mean=_blob(f"{ds}/mean.npy"),
                mean_jpg=_blob(f"{ds}/mean.jpg"),
                image_width=28,
                image_height=28,
                image_channels=1,
                occurred_at=at,
            ),
        )
    )
    return out


def history(jobs: int, seed: int = 7) -> list[tuple[str, object]]:
    """(subject, event) in publish order for `jobs` model jobs (one dataset per 20 jobs)."""
    rnd = random.Random(seed)
    at = utcnow() - timedelta(days=30)
    out: list[tuple[str, object]] = [
        (
            subjects.user_events(u),
            UserCreated(
                username=u, role=Role.USER, password_hash="x", actor="admin", occurred_at=at
            ),
        )
        for u in USERS
    ]
    devices = [Device(device_id=f"cpu{i}", kind="cpu", index=i, name="CPU slot") for i in (0, 1)]
    gpu = subjects.gpu_events(NODE)
    out.append((gpu, DevicesDiscovered(node_id=NODE, devices=devices, occurred_at=at)))
    datasets: list[str] = []
    for wave_start in range(0, jobs, WAVE):
        wave = range(wave_start, min(jobs, wave_start + WAVE))
        if wave_start % 20 == 0 or not datasets:
            out += _dataset(len(datasets), at)
            datasets.append(f"ds{len(datasets):04d}")
        queue: list[QueueEntry] = []
        for j in wave:
            model = f"m{j:05d}"
            user = USERS[j % len(USERS)]
            spec = TrainSpec(train_epochs=2, select_gpu_count=1)
            out.append(
                (
                    subjects.model_events(model),
                    ModelCreated(
                        model_id=model,
                        name=f"lenet {j}",
                        username=user,
                        actor=user,
                        dataset_id=datasets[-1],
                        spec=spec,
                        form=FORM,
                        occurred_at=at,
                    ),
                )
            )
            out.append(
                (
                    subjects.model_events(model),
                    ModelWaiting(model_id=model, reason="devices busy", occurred_at=at),
                )
            )
            queue.append(
                QueueEntry(
                    job_id=model,
                    holder="trainer",
                    user=user,
                    count=1,
                    node_id=NODE,
                    since=j,
                    position=len(queue),
                    reason="devices busy",
                )
            )
            out.append((gpu, QueueChanged(node_id=NODE, entries=list(queue), occurred_at=at)))
        for j in wave:
            out += _train(f"m{j:05d}", queue, rnd, at)
            at += timedelta(seconds=30)
    return out


def _train(model: str, queue: list[QueueEntry], rnd: random.Random, at):
    subject, metrics, gpu = (
        subjects.model_events(model),
        subjects.model_metrics(model),
        subjects.gpu_events(NODE),
    )
    queue[:] = [
        QueueEntry(
            job_id=e.job_id,
            holder=e.holder,
            user=e.user,
            node_id=NODE,
            since=e.since,
            position=p,
            reason=e.reason,
        )
        for p, e in enumerate(e for e in queue if e.job_id != model)
    ]
    lease = f"lease-{model}"
    out: list[tuple[str, object]] = [
        (
            gpu,
            LeaseGranted(
                node_id=NODE, lease_id=lease, job_id=model, device_ids=["cpu0"], occurred_at=at
            ),
        ),
        (gpu, QueueChanged(node_id=NODE, entries=list(queue), occurred_at=at)),
        (
            subject,
            TrainingStarted(
                model_id=model, node_id=NODE, devices=["cpu0"], lease_id=lease, occurred_at=at
            ),
        ),
    ]
    fate = rnd.random()
    epochs = 1 if fate < 0.1 else 2
    for epoch in range(1, epochs + 1):
        for it in range(1, 101):
            step = (epoch - 1) * 100 + it
            values = {"loss": 2.3 / step, "learning_rate": 0.01}
            out.append(
                (
                    metrics,
                    MetricsRecorded(
                        model_id=model,
                        phase="train",
                        iteration=step,
                        epoch=step / 100,
                        values=values,
                        occurred_at=at,
                    ),
                )
            )
            if it % 10 == 0:
                out.append(
                    (
                        subject,
                        TrainingProgressed(
                            model_id=model,
                            epoch=step / 100,
                            progress=step / 200,
                            eta_seconds=9.0,
                            occurred_at=at,
                        ),
                    )
                )
        out.append(
            (
                metrics,
                MetricsRecorded(
                    model_id=model,
                    phase="val",
                    iteration=epoch * 100,
                    epoch=epoch,
                    values={"loss": 0.3, "accuracy": 0.9},
                    occurred_at=at,
                ),
            )
        )
        out.append(
            (
                subject,
                SnapshotSaved(
                    model_id=model,
                    epoch=epoch,
                    symbol=_blob(f"{model}/{epoch}-symbol.json"),
                    params=_blob(f"{model}/{epoch}.params"),
                    state=_blob(f"{model}/{epoch}.state"),
                    input_shape=[1, 28, 28],
                    occurred_at=at,
                ),
            )
        )
    if fate < 0.1:
        out.append(
            (subject, ModelAborted(model_id=model, reason="by user", actor="alice", occurred_at=at))
        )
    else:
        out.append((subject, TrainingCompleted(model_id=model, occurred_at=at)))
    out.append(
        (
            gpu,
            LeaseReleased(
                node_id=NODE, lease_id=lease, job_id=model, device_ids=["cpu0"], occurred_at=at
            ),
        )
    )
    if 0.1 <= fate < 0.15:
        out.append(
            (
                subject,
                ModelEdited(
                    model_id=model,
                    name=f"renamed {model}",
                    notes="n",
                    actor="alice",
                    occurred_at=at,
                ),
            )
        )
    if 0.15 <= fate < 0.2:
        out.append((subject, ModelDeleted(model_id=model, actor="alice", occurred_at=at)))
    return out


def per_stream(events: list[tuple[str, object]]) -> Counter[str]:
    """How many events go to each stream."""
    streams = {v.split(".>")[0]: k for k, v in subjects.EVENT_STREAMS.items()}
    return Counter(
        next(s for prefix, s in streams.items() if subject.startswith(prefix + "."))
        for subject, _ in events
    )


async def publish(js: JetStreamContext, events: list[tuple[str, object]]) -> None:
    """Publish every event (acks awaited in bulk, like the services' own appends in order)."""
    for subject, event in events:
        await js.publish_async(subject, codec.encode(event))
    await js.publish_async_completed()
