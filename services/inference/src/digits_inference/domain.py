"""Pure folds of model and dataset events into what one classification needs (no I/O)."""

from __future__ import annotations

import math

import msgspec

from digits_inference import errors
from digits_proto.base import BlobRef
from digits_proto.datasets import DatasetBuilt, DatasetCreated, DatasetDeleted
from digits_proto.models import (
    ModelAborted,
    ModelCreated,
    ModelDeleted,
    ModelEdited,
    ModelWaiting,
    PretrainedModelCreated,
    SnapshotDeleted,
    SnapshotSaved,
    TrainingCompleted,
    TrainingFailed,
    TrainingStarted,
)

# Events that set a model's status (COMMON's mapping), by type: inference needs no more.
STATUS_OF: dict[type, str] = {
    ModelWaiting: "Waiting",
    TrainingStarted: "Running",
    TrainingCompleted: "Done",
    TrainingFailed: "Error",
    ModelAborted: "Aborted",
}
EPOCH_TOLERANCE = 1e-6  # epochs are floats on the wire ("2", "2.5"); compare them loosely


class Snapshot(msgspec.Struct, frozen=True, kw_only=True):
    """One saved snapshot of a model: its exported network and the input it expects."""

    epoch: float
    symbol: BlobRef
    params: BlobRef
    input_shape: tuple[int, ...] = ()


class ModelView(msgspec.Struct, frozen=True, kw_only=True):
    """A model job as inference sees it."""

    exists: bool = False
    deleted: bool = False
    dataset_id: str = ""
    crop_size: int | None = None
    name: str = ""
    username: str = ""
    created_at: str = ""
    use_mean: str = "image"
    status: str = "Initialized"
    snapshots: tuple[Snapshot, ...] = ()  # sorted by epoch, one per epoch (the latest save wins)
    # A pretrained model has no dataset: its own event says how to resize, and its labels.
    preprocessing: DatasetView | None = None


class DatasetView(msgspec.Struct, frozen=True, kw_only=True):
    """A dataset as inference sees it: how its images were resized, and its labels."""

    exists: bool = False
    deleted: bool = False
    width: int = 0
    height: int = 0
    channels: int = 0
    resize_mode: str = "squash"
    labels: tuple[str, ...] | None = None  # None until the dataset is built
    mean: BlobRef | None = None  # float32 C×H×W .npy of the train split
    mean_jpg: BlobRef | None = None


class Plan(msgspec.Struct, frozen=True, kw_only=True):
    """Everything needed to classify with one snapshot: preprocessing, blobs, labels."""

    job_id: str
    epoch: float
    symbol: BlobRef
    params: BlobRef
    width: int
    height: int
    channels: int
    resize_mode: str
    input_shape: tuple[int, int, int]  # C, H, W the network takes (after the center crop)
    labels: tuple[str, ...]


def evolve_model(state: ModelView, event: object) -> ModelView:
    """Apply one model event; events inference does not need leave the state unchanged."""
    match event:
        case ModelCreated():
            return msgspec.structs.replace(
                state,
                exists=True,
                dataset_id=event.dataset_id,
                crop_size=event.spec.crop_size,
                name=event.name,
                username=event.username,
                created_at=event.occurred_at.isoformat(),
                use_mean=event.spec.use_mean,
            )
        case PretrainedModelCreated():
            own = DatasetView(
                exists=True,
                width=event.width,
                height=event.height,
                channels=event.channels,
                resize_mode=event.resize_mode,
                labels=tuple(event.labels),
                mean=event.mean,
                mean_jpg=event.mean_jpg,
            )
            return msgspec.structs.replace(
                state,
                exists=True,
                crop_size=event.crop_size,
                name=event.name,
                username=event.username,
                created_at=event.occurred_at.isoformat(),
                use_mean=event.use_mean,
                preprocessing=own,
            )
        case ModelEdited(name=str() as name):  # a rename shows in downloads' info.json
            return msgspec.structs.replace(state, name=name)
        case SnapshotSaved():
            snap = Snapshot(
                epoch=event.epoch,
                symbol=event.symbol,
                params=event.params,
                input_shape=tuple(event.input_shape),
            )
            kept = [s for s in state.snapshots if not _same_epoch(s.epoch, event.epoch)]
            ordered = tuple(sorted([*kept, snap], key=lambda s: s.epoch))
            return msgspec.structs.replace(state, snapshots=ordered)
        case SnapshotDeleted():
            kept = tuple(s for s in state.snapshots if not _same_epoch(s.epoch, event.epoch))
            return msgspec.structs.replace(state, snapshots=kept)
        case ModelDeleted():
            return msgspec.structs.replace(state, deleted=True)
        case _ if type(event) in STATUS_OF:
            return msgspec.structs.replace(state, status=STATUS_OF[type(event)])
        case _:
            return state


def evolve_dataset(state: DatasetView, event: object) -> DatasetView:
    """Apply one dataset event (the built event's sizes are what the images really are)."""
    match event:
        case DatasetCreated():
            spec = event.spec
            return msgspec.structs.replace(
                state,
                exists=True,
                width=spec.resize_width,
                height=spec.resize_height,
                channels=spec.resize_channels,
                resize_mode=spec.resize_mode,
            )
        case DatasetBuilt():
            return msgspec.structs.replace(
                state,
                labels=tuple(event.labels),
                mean=event.mean,
                mean_jpg=event.mean_jpg,
                width=event.image_width,
                height=event.image_height,
                channels=event.image_channels,
            )
        case DatasetDeleted():
            # Still usable: a model keeps working from what its dataset's events recorded.
            return msgspec.structs.replace(state, deleted=True)
        case _:
            return state


def choose_snapshot(job_id: str, model: ModelView, epoch: float | None) -> Snapshot:
    """The snapshot asked for (the latest when `epoch` is None), or the refusal."""
    if not model.exists or model.deleted:
        raise errors.JobNotFound(job_id)
    if not model.snapshots:
        raise errors.NoSnapshot(job_id)
    if epoch is None:
        return model.snapshots[-1]
    for snap in model.snapshots:
        if _same_epoch(snap.epoch, epoch):
            return snap
    raise errors.UnknownSnapshot(epoch, [s.epoch for s in model.snapshots])


def plan_classification(
    job_id: str, model: ModelView, dataset: DatasetView, epoch: float | None
) -> Plan:
    """Combine the model's snapshot and its dataset's preprocessing into one plan."""
    snap = choose_snapshot(job_id, model, epoch)
    if not dataset.exists:
        raise errors.DatasetUnavailable(model.dataset_id, "no longer exists")
    if dataset.labels is None:
        raise errors.DatasetUnavailable(model.dataset_id, "was never built")
    image_shape = [dataset.channels, dataset.height, dataset.width]
    shape = snap.input_shape or _default_input_shape(dataset, model.crop_size)
    if (
        len(shape) != 3
        or shape[0] != dataset.channels
        or shape[1] > dataset.height
        or shape[2] > dataset.width
    ):
        raise errors.ShapeMismatch(list(shape), image_shape)
    return Plan(
        job_id=job_id,
        epoch=snap.epoch,
        symbol=snap.symbol,
        params=snap.params,
        width=dataset.width,
        height=dataset.height,
        channels=dataset.channels,
        resize_mode=dataset.resize_mode,
        input_shape=(shape[0], shape[1], shape[2]),
        labels=dataset.labels,
    )


def _default_input_shape(dataset: DatasetView, crop_size: int | None) -> tuple[int, ...]:
    if crop_size:
        return (dataset.channels, crop_size, crop_size)
    return (dataset.channels, dataset.height, dataset.width)


def _same_epoch(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=0.0, abs_tol=EPOCH_TOLERANCE)
