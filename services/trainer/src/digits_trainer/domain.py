"""Model and dataset aggregates folded from their events; pure decisions, no I/O."""

from __future__ import annotations

import enum
from collections.abc import Iterable

import msgspec

from digits_proto.base import JobStatus
from digits_proto.datasets import (
    DatasetAborted,
    DatasetBuildStarted,
    DatasetBuilt,
    DatasetCreated,
    DatasetDeleted,
    DatasetEvents,
    DatasetFailed,
)
from digits_proto.models import (
    AbortModel,
    CreateModel,
    ModelAborted,
    ModelCreated,
    ModelDeleted,
    ModelEvents,
    ModelWaiting,
    SnapshotSaved,
    TrainingCompleted,
    TrainingFailed,
    TrainingStarted,
    TrainSpec,
)
from digits_trainer.errors import InvalidField, ModelNotFound, NotAbortable
from digits_trainer.spec import check_crop, check_spec

WAITING_FOR_DEVICES = "Waiting for devices"


class ModelState(msgspec.Struct, frozen=True, kw_only=True):
    """What the trainer needs to know about one model job."""

    model_id: str
    name: str
    dataset_id: str
    spec: TrainSpec
    status: JobStatus = JobStatus.INITIALIZED
    deleted: bool = False
    waiting_reason: str = ""
    attempts: int = 0
    snapshots: tuple[float, ...] = ()


class DatasetState(msgspec.Struct, frozen=True, kw_only=True):
    """What the trainer needs to know about the dataset a job trains on."""

    dataset_id: str
    name: str
    status: JobStatus = JobStatus.INITIALIZED
    deleted: bool = False
    built: DatasetBuilt | None = None
    error: str = ""


def evolve_model(state: ModelState | None, event: ModelEvents) -> ModelState | None:
    """The model job after one more event."""
    if isinstance(event, ModelCreated):
        return ModelState(
            model_id=event.model_id, name=event.name, dataset_id=event.dataset_id, spec=event.spec
        )
    if state is None:
        return None
    replace = msgspec.structs.replace
    match event:
        case ModelWaiting(reason=reason):
            return replace(state, status=JobStatus.WAITING, waiting_reason=reason)
        case TrainingStarted():
            return replace(
                state, status=JobStatus.RUNNING, waiting_reason="", attempts=state.attempts + 1
            )
        case SnapshotSaved(epoch=epoch):
            return replace(state, snapshots=(*state.snapshots, epoch))
        case TrainingCompleted():
            return replace(state, status=JobStatus.DONE)
        case TrainingFailed():
            return replace(state, status=JobStatus.ERROR)
        case ModelAborted():
            return replace(state, status=JobStatus.ABORTED)
        case ModelDeleted():
            return replace(state, deleted=True)
        case _:
            return state  # progress events don't change what the trainer decides on


def fold_model(events: Iterable[ModelEvents]) -> ModelState | None:
    """Fold a model job's history; None if it was never created."""
    state: ModelState | None = None
    for event in events:
        state = evolve_model(state, event)
    return state


def evolve_dataset(state: DatasetState | None, event: DatasetEvents) -> DatasetState | None:
    """The dataset after one more event."""
    if isinstance(event, DatasetCreated):
        return DatasetState(dataset_id=event.dataset_id, name=event.name)
    if state is None:
        return None
    replace = msgspec.structs.replace
    match event:
        case DatasetBuildStarted():
            return replace(state, status=JobStatus.RUNNING)
        case DatasetBuilt():
            return replace(state, status=JobStatus.DONE, built=event)
        case DatasetFailed(error=error):
            return replace(state, status=JobStatus.ERROR, error=error)
        case DatasetAborted():
            return replace(state, status=JobStatus.ABORTED)
        case DatasetDeleted():
            return replace(state, deleted=True)
        case _:
            return state


def fold_dataset(events: Iterable[DatasetEvents]) -> DatasetState | None:
    """Fold a dataset's history; None if it was never created."""
    state: DatasetState | None = None
    for event in events:
        state = evolve_dataset(state, event)
    return state


def decide_create(
    command: CreateModel, dataset: DatasetState | None, model_id: str
) -> ModelCreated:
    """Accept a new training job, or raise naming the form field at fault."""
    if not command.name.strip():
        raise InvalidField("model_name", "This field is required.")
    if dataset is None or dataset.status in (JobStatus.ERROR, JobStatus.ABORTED):
        raise InvalidField("dataset", "Not a valid choice")
    if dataset.deleted:
        raise InvalidField("dataset", f"dataset {dataset.dataset_id} was deleted")
    check_spec(command.spec)
    if dataset.built is not None:
        check_crop(command.spec, dataset.built)
    return ModelCreated(
        model_id=model_id,
        name=command.name.strip(),
        username=command.username,
        group=command.group,
        dataset_id=dataset.dataset_id,
        spec=command.spec,
        form=command.form,
    )


def decide_abort(state: ModelState | None, command: AbortModel) -> list[ModelAborted]:
    """Abort a job that may still change; DIGITS forbids aborting one that has ended."""
    if state is None or state.deleted:
        raise ModelNotFound(command.model_id)
    if not state.status.is_running:
        raise NotAbortable()
    return [ModelAborted(model_id=state.model_id, reason="Aborted by user")]


def decide_delete(state: ModelState | None, model_id: str) -> list[ModelDeleted]:
    """Delete a job (a running one stops: its trainer watches for this event)."""
    if state is None or state.deleted:
        raise ModelNotFound(model_id)
    return [ModelDeleted(model_id=model_id)]


class Gate(enum.Enum):
    """Whether a job's dataset lets it train now."""

    READY = "ready"
    WAIT = "wait"
    ABORT = "abort"


def dataset_gate(dataset: DatasetState | None, dataset_id: str) -> tuple[Gate, str]:
    """DIGITS's scheduler rule: wait until the dataset is Done, abort if it failed or vanished."""
    if dataset is None or dataset.deleted:
        return Gate.ABORT, f"Dataset {dataset_id} was deleted"
    if dataset.status is JobStatus.DONE and dataset.built is not None:
        return Gate.READY, ""
    if dataset.status in (JobStatus.ERROR, JobStatus.ABORTED):
        return Gate.ABORT, f"Dataset {dataset_id} ended {dataset.status.value}"
    return Gate.WAIT, f"Waiting for dataset {dataset_id}"


def decide_wait(state: ModelState, reason: str) -> list[ModelWaiting]:
    """Say why the job waits, once: a redelivered ticket must not repeat the same event."""
    if state.status is JobStatus.WAITING and state.waiting_reason == reason:
        return []
    return [ModelWaiting(model_id=state.model_id, reason=reason)]
