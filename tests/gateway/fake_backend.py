"""Fake backend services for gateway tests: real nats.micro endpoints that append real events.

The datasets, trainer, inference and gpu-broker services are written by others at the same
time; these stand-ins answer the same subjects with the same replies, so the gateway is tested
black-box over NATS. Helpers append the events a build or a training run would produce.
"""

from __future__ import annotations

from typing import Any

from nats.aio.client import Client
from nats.js import JetStreamContext

from digits_proto import JobStatus, base, codec, new_job_id, subjects
from digits_proto.datasets import (
    AbortDataset,
    CreateDataset,
    DatasetAborted,
    DatasetBuildStarted,
    DatasetBuilt,
    DatasetCreated,
    DatasetDeleted,
    DatasetEdited,
    DatasetFolderParsed,
    DatasetProgressed,
    DeleteDataset,
    EditDataset,
    Shard,
    SplitBlobs,
)
from digits_proto.gpus import AcquireLease
from digits_proto.inference import Classified, ClassifyOne
from digits_proto.models import (
    AbortModel,
    CreateModel,
    DeleteModel,
    EditModel,
    MetricsRecorded,
    ModelAborted,
    ModelCreated,
    ModelDeleted,
    ModelEdited,
    SnapshotSaved,
    TrainingCompleted,
    TrainingProgressed,
    TrainingStarted,
)
from digits_proto.replies import Accepted
from digits_proto.runtime import DomainError, EventStore, Forbidden, NotFound, serve_endpoints

FINAL = {
    "DatasetBuilt": "Done",
    "DatasetFailed": "Error",
    "DatasetAborted": "Aborted",
    "TrainingCompleted": "Done",
    "TrainingFailed": "Error",
    "ModelAborted": "Aborted",
}


def _actor(cmd: Any) -> str:
    """Who caused the event, as the real services record it (the command's principal)."""
    return cmd.principal.username if cmd.principal is not None else ""


def blob(name: str) -> base.BlobRef:
    """A blob reference (the fakes never upload the bytes)."""
    return base.BlobRef(bucket=subjects.BUCKET_DATASETS, name=name, digest="d", size=1)


class FakeBackend:
    """Stand-ins for the four backend services, plus helpers that drive a job's life."""

    def __init__(self, nc: Client, js: JetStreamContext):
        self.nc = nc
        self.js = js
        self.datasets = EventStore(js, subjects.STREAM_DATASETS, codec.dataset_events)
        self.models = EventStore(js, subjects.STREAM_MODELS, codec.model_events)
        self.metrics = EventStore(js, subjects.STREAM_METRICS, codec.metric_events)
        self.classified: list[ClassifyOne] = []
        self.services: list[Any] = []

    async def start(self, names: tuple[str, ...] = subjects.BACKEND_SERVICES) -> None:
        """Register the endpoints of the named services (which also answers their pings)."""
        tables = {
            subjects.SERVICE_DATASETS: (
                codec.dataset_commands,
                {
                    subjects.CMD_DATASETS_CREATE: self.create_dataset,
                    subjects.CMD_DATASETS_ABORT: self.abort_dataset,
                    subjects.CMD_DATASETS_DELETE: self.delete_dataset,
                    subjects.CMD_DATASETS_EDIT: self.edit_dataset,
                },
            ),
            subjects.SERVICE_TRAINER: (
                codec.model_commands,
                {
                    subjects.CMD_MODELS_CREATE: self.create_model,
                    subjects.CMD_MODELS_ABORT: self.abort_model,
                    subjects.CMD_MODELS_DELETE: self.delete_model,
                    subjects.CMD_MODELS_EDIT: self.edit_model,
                },
            ),
            subjects.SERVICE_INFERENCE: (
                codec.inference_commands,
                {
                    subjects.CMD_INFERENCE_CLASSIFY_ONE: self.classify_one,
                },
            ),
            subjects.SERVICE_GPU_BROKER: (
                codec.gpu_commands,
                {
                    subjects.CMD_GPUS_ACQUIRE: self.refuse,
                },
            ),
        }
        for name in names:
            decoder, handlers = tables[name]
            self.services.append(await serve_endpoints(self.nc, name, decoder, handlers))

    async def stop(self) -> None:
        """Unregister every endpoint."""
        for service in self.services:
            await service.stop()
        self.services.clear()

    # --- datasets ---

    async def create_dataset(self, cmd: CreateDataset) -> Accepted:
        if cmd.spec.method == "folder" and not cmd.spec.folder_train.startswith("/"):
            raise DomainError("folder_train must be an absolute path", field="folder_train")
        dataset_id = new_job_id()
        event = DatasetCreated(
            dataset_id=dataset_id,
            name=cmd.name,
            username=cmd.username,
            group=cmd.group,
            spec=cmd.spec,
            form=cmd.form,
            actor=_actor(cmd),
            idempotency_key=cmd.idempotency_key,  # recorded as the real service does
            request_digest=cmd.request_digest,
        )
        seq = await self.datasets.append(subjects.dataset_events(dataset_id), [event], 0)
        return Accepted(
            id=dataset_id,
            name=cmd.name,
            status=JobStatus.INITIALIZED,
            stream=subjects.STREAM_DATASETS,
            seq=seq,
        )

    async def abort_dataset(self, cmd: AbortDataset) -> Accepted:
        return await self._stop(
            self.datasets,
            subjects.dataset_events(cmd.dataset_id),
            DatasetAborted(dataset_id=cmd.dataset_id, actor=_actor(cmd)),
            subjects.STREAM_DATASETS,
        )

    async def delete_dataset(self, cmd: DeleteDataset) -> Accepted:
        return await self._delete(
            self.datasets,
            subjects.dataset_events(cmd.dataset_id),
            DatasetDeleted(dataset_id=cmd.dataset_id, actor=_actor(cmd)),
            subjects.STREAM_DATASETS,
        )

    async def edit_dataset(self, cmd: EditDataset) -> Accepted:
        event = DatasetEdited(
            dataset_id=cmd.dataset_id,
            name=cmd.name,
            notes=cmd.notes,
            tags=cmd.tags,
            actor=_actor(cmd),
        )
        return await self._edit(
            self.datasets, subjects.dataset_events(cmd.dataset_id), event, cmd.principal
        )

    # --- models ---

    async def create_model(self, cmd: CreateModel) -> Accepted:
        if cmd.spec.standard_network not in ("lenet", "alexnet"):
            raise DomainError(
                f"Unknown network {cmd.spec.standard_network}", field="standard_networks"
            )
        model_id = new_job_id()
        event = ModelCreated(
            model_id=model_id,
            name=cmd.name,
            username=cmd.username,
            group=cmd.group,
            dataset_id=cmd.dataset_id,
            spec=cmd.spec,
            form=cmd.form,
            actor=_actor(cmd),
            idempotency_key=cmd.idempotency_key,  # recorded as the real service does
            request_digest=cmd.request_digest,
        )
        seq = await self.models.append(subjects.model_events(model_id), [event], 0)
        return Accepted(
            id=model_id,
            name=cmd.name,
            status=JobStatus.INITIALIZED,
            stream=subjects.STREAM_MODELS,
            seq=seq,
        )

    async def abort_model(self, cmd: AbortModel) -> Accepted:
        return await self._stop(
            self.models,
            subjects.model_events(cmd.model_id),
            ModelAborted(model_id=cmd.model_id, reason="by user", actor=_actor(cmd)),
            subjects.STREAM_MODELS,
        )

    async def delete_model(self, cmd: DeleteModel) -> Accepted:
        return await self._delete(
            self.models,
            subjects.model_events(cmd.model_id),
            ModelDeleted(model_id=cmd.model_id, actor=_actor(cmd)),
            subjects.STREAM_MODELS,
        )

    async def edit_model(self, cmd: EditModel) -> Accepted:
        event = ModelEdited(
            model_id=cmd.model_id,
            name=cmd.name,
            notes=cmd.notes,
            tags=cmd.tags,
            actor=_actor(cmd),
        )
        return await self._edit(
            self.models, subjects.model_events(cmd.model_id), event, cmd.principal
        )

    # --- inference and gpus ---

    async def classify_one(self, cmd: ClassifyOne) -> Classified:
        self.classified.append(cmd)
        if cmd.image_blob is None and not cmd.image.startswith(b"\x89PNG"):
            raise DomainError("cannot identify image file", field="image")
        return Classified(
            job_id=cmd.job_id,
            snapshot_epoch=cmd.snapshot_epoch or 2.0,
            predictions=[("cat", 91.5), ("dog", 8.5)],
        )

    async def refuse(self, cmd: AcquireLease) -> Accepted:
        raise DomainError("busy", code=409)

    # --- shared ---

    async def _stop(
        self, store: EventStore[Any], subject: str, event: Any, stream: str
    ) -> Accepted:
        events, last = await store.load(subject)
        if not events:
            raise NotFound("no such job")
        status = next(
            (FINAL[type(e).__name__] for e in reversed(events) if type(e).__name__ in FINAL),
            "Running",
        )
        if status != "Running":
            raise Forbidden("Job not running")
        seq = await store.append(subject, [event], last)
        return Accepted(
            id=subject.rsplit(".", 1)[-1], status=JobStatus.ABORTED, stream=stream, seq=seq
        )

    async def _edit(
        self, store: EventStore[Any], subject: str, event: Any, user: base.Principal | None
    ) -> Accepted:
        events, last = await store.load(subject)
        if not events:
            raise NotFound("no such job")
        if events[0].username and (user is None or not user.may_change(events[0].username)):
            raise Forbidden("You don't have permission to edit this job")
        if event.name is not None and not event.name.strip():
            raise DomainError("name cannot be blank", field="job_name")
        seq = await store.append(subject, [event], last)
        return Accepted(id=subject.rsplit(".", 1)[-1], stream=store.stream, seq=seq)

    async def _delete(
        self, store: EventStore[Any], subject: str, event: Any, stream: str
    ) -> Accepted:
        events, last = await store.load(subject)
        if not events:
            raise NotFound("no such job")
        seq = await store.append(subject, [event], last)
        return Accepted(id=subject.rsplit(".", 1)[-1], stream=stream, seq=seq)

    # --- helpers that play a job's life ---

    async def build(
        self, dataset_id: str, labels: tuple[str, ...] = ("cat", "dog"), shards: int = 0
    ) -> int:
        """Append what a successful build of 8 images (6 train, 2 val) appends; `shards` > 0
        lists the train split as that many shards (0: no list, as before sharding)."""
        subject = subjects.dataset_events(dataset_id)
        _, last = await self.datasets.load(subject)
        train_shards = [
            Shard(
                entries=6 // shards + (n < 6 % shards),
                rec=blob(f"{dataset_id}/train-{n}.rec"),
                idx=blob(f"{dataset_id}/train-{n}.idx"),
            )
            for n in range(shards)
        ]
        splits = [
            SplitBlobs(
                split="train",
                entries=6,
                rec=train_shards[0].rec if shards else blob(f"{dataset_id}/train.rec"),
                idx=train_shards[0].idx if shards else blob(f"{dataset_id}/train.idx"),
                class_counts=[3, 3],
                shards=train_shards,
            ),
            SplitBlobs(
                split="val",
                entries=2,
                rec=blob(f"{dataset_id}/val.rec"),
                idx=blob(f"{dataset_id}/val.idx"),
                class_counts=[1, 1],
            ),
        ]
        events = [
            DatasetBuildStarted(dataset_id=dataset_id, worker="w1"),
            DatasetFolderParsed(
                dataset_id=dataset_id,
                folder="/data/pets",
                labels=list(labels),
                split_counts={"train": 6, "val": 2, "test": 0},
            ),
            DatasetProgressed(
                dataset_id=dataset_id, phase="train", done=3, total=6, eta_seconds=1.0
            ),
            DatasetBuilt(
                dataset_id=dataset_id,
                labels=list(labels),
                labels_blob=blob(f"{dataset_id}/labels.txt"),
                splits=splits,
                mean=blob(f"{dataset_id}/mean.npy"),
                mean_jpg=blob(f"{dataset_id}/mean.jpg"),
                image_width=32,
                image_height=28,
                image_channels=3,
            ),
        ]
        return await self.datasets.append(subject, events, last)

    async def start_training(self, model_id: str) -> int:
        """TrainingStarted."""
        subject = subjects.model_events(model_id)
        _, last = await self.models.load(subject)
        return await self.models.append(subject, [TrainingStarted(model_id=model_id)], last)

    async def progress(self, model_id: str, epoch: float, progress: float) -> int:
        """A TrainingProgressed event, on the job's progress subject as the trainer sends it;
        the progress stream's sequence."""
        event = TrainingProgressed(
            model_id=model_id, epoch=epoch, progress=progress, eta_seconds=10.0
        )
        ack = await self.js.publish(subjects.model_progress(model_id), codec.encode(event))
        return ack.seq

    async def metric(
        self, model_id: str, iteration: int, phase: str = "train", **values: float
    ) -> int:
        """A MetricsRecorded event (msg id as the trainer sets it)."""
        event = MetricsRecorded(
            model_id=model_id,
            epoch=iteration / 10,
            iteration=iteration,
            phase=phase,
            values=values or {"loss": 1.0 / (iteration + 1)},
        )
        ack = await self.js.publish(
            subjects.model_metrics(model_id),
            codec.encode(event),
            headers={"Nats-Msg-Id": f"{model_id}:{phase}:{iteration}"},
        )
        return ack.seq

    async def snapshot(self, model_id: str, epoch: float) -> int:
        """A SnapshotSaved event."""
        subject = subjects.model_events(model_id)
        _, last = await self.models.load(subject)
        event = SnapshotSaved(
            model_id=model_id,
            epoch=epoch,
            symbol=blob(f"{model_id}/snapshot-{epoch:g}-symbol.json"),
            params=blob(f"{model_id}/snapshot-{epoch:g}.params"),
            input_shape=[3, 28, 32],
        )
        return await self.models.append(subject, [event], last)

    async def complete(self, model_id: str) -> int:
        """TrainingCompleted."""
        subject = subjects.model_events(model_id)
        _, last = await self.models.load(subject)
        return await self.models.append(subject, [TrainingCompleted(model_id=model_id)], last)
