"""Model and dataset aggregates folded from their events; pure decisions, no I/O."""

from __future__ import annotations

import enum
from collections.abc import Iterable

import msgspec

from digits_proto.base import JobStatus, edited, edited_tags
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
    DeleteModel,
    EditModel,
    ModelAborted,
    ModelCreated,
    ModelDeleted,
    ModelEdited,
    ModelEvents,
    ModelWaiting,
    PretrainedModelCreated,
    SnapshotDeleted,
    SnapshotSaved,
    TrainingCompleted,
    TrainingFailed,
    TrainingStarted,
    TrainSpec,
    WorkerLost,
)
from digits_proto.stamps import Stamps
from digits_trainer import access
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
    snapshot_events: tuple[SnapshotSaved, ...] = ()
    username: str = ""  # the owner: the gpu-broker caps concurrent jobs per user
    submitted: float = 0.0  # epoch seconds of ModelCreated: the device queue's FIFO order
    pretrained: bool = False  # a registered pretrained model (PretrainedModelCreated)
    notes: str = ""
    tags: tuple[str, ...] = ()
    holder: str = ""  # the node whose trainer last took the running job (TrainingStarted…)
    losses: int = 0  # ... and how many times such a trainer was lost (WorkerLost)

    @property
    def last_snapshot(self) -> SnapshotSaved | None:
        """The newest snapshot: where a resumed attempt continues from."""
        return self.snapshot_events[-1] if self.snapshot_events else None


class DatasetState(msgspec.Struct, frozen=True, kw_only=True):
    """What the trainer needs to know about the dataset a job trains on."""

    dataset_id: str
    name: str
    status: JobStatus = JobStatus.INITIALIZED
    deleted: bool = False
    built: DatasetBuilt | None = None
    error: str = ""
    shape: tuple[int, int, int] = (3, 256, 256)  # C, H, W the dataset resizes to

    def input_shape(self, spec: TrainSpec) -> tuple[int, tuple[int, int, int]]:
        """(classes, [C, H, W] after the crop) a job's network gets (2 classes until built)."""
        channels, height, width = self.shape
        classes = 2
        if self.built is not None:
            b = self.built
            channels, height, width, classes = (
                b.image_channels,
                b.image_height,
                b.image_width,
                len(b.labels),
            )
        crop = spec.crop_size
        return classes, (channels, crop or height, crop or width)


def evolve_model(state: ModelState | None, event: ModelEvents) -> ModelState | None:
    """The model job after one more event."""
    if isinstance(event, ModelCreated):
        return ModelState(
            model_id=event.model_id,
            name=event.name,
            dataset_id=event.dataset_id,
            spec=event.spec,
            username=event.username,
            submitted=event.occurred_at.timestamp(),
        )
    if isinstance(event, PretrainedModelCreated):
        return pretrained_state(event)
    if state is None:
        return None
    replace = msgspec.structs.replace
    match event:
        case ModelWaiting(reason=reason):
            return replace(state, status=JobStatus.WAITING, waiting_reason=reason)
        case TrainingStarted(node_id=node_id):
            return replace(
                state,
                status=JobStatus.RUNNING,
                waiting_reason="",
                attempts=state.attempts + 1,
                holder=node_id,
            )
        case WorkerLost(taken_by=taken_by, losses=losses):
            return replace(state, holder=taken_by, losses=max(losses, state.losses + 1))
        case SnapshotSaved() | SnapshotDeleted():
            return evolve_snapshots(state, event)
        case TrainingCompleted():
            return replace(state, status=JobStatus.DONE)
        case TrainingFailed():
            return replace(state, status=JobStatus.ERROR)
        case ModelAborted():
            return replace(state, status=JobStatus.ABORTED)
        case ModelDeleted():
            return replace(state, deleted=True)
        case ModelEdited(name=name, notes=notes, tags=tags):
            return replace(
                state,
                name=state.name if name is None else name,
                notes=state.notes if notes is None else notes,
                tags=state.tags if tags is None else tuple(tags),
            )
        case _:
            return state  # progress events don't change what the trainer decides on


def pretrained_state(event: PretrainedModelCreated) -> ModelState:
    """A pretrained model: no dataset, never trained here, Done from the start; its spec holds
    the network source a fine-tuning job starts from."""
    spec = TrainSpec(
        method="custom" if event.custom_network.strip() else "standard",
        standard_network=event.standard_network,
        custom_network=event.custom_network,
        use_mean=event.use_mean,
        crop_size=event.crop_size,
    )
    return ModelState(
        model_id=event.model_id,
        name=event.name,
        dataset_id="",
        spec=spec,
        status=JobStatus.DONE,
        username=event.username,
        submitted=event.occurred_at.timestamp(),
        pretrained=True,
    )


def evolve_snapshots(state: ModelState, event: SnapshotSaved | SnapshotDeleted) -> ModelState:
    """The snapshots a job offers: saved ones, less those retention deleted."""
    kept = tuple(s for s in state.snapshot_events if s.epoch != event.epoch)
    if isinstance(event, SnapshotSaved):
        kept = (*kept, event)
    return msgspec.structs.replace(
        state, snapshots=tuple(s.epoch for s in kept), snapshot_events=kept
    )


def fold_model(events: Iterable[ModelEvents]) -> ModelState | None:
    """Fold a model job's history; None if it was never created."""
    state: ModelState | None = None
    for event in events:
        state = evolve_model(state, event)
    return state


def evolve_dataset(state: DatasetState | None, event: DatasetEvents) -> DatasetState | None:
    """The dataset after one more event."""
    if isinstance(event, DatasetCreated):
        size = event.spec
        shape = (size.resize_channels, size.resize_height, size.resize_width)
        return DatasetState(dataset_id=event.dataset_id, name=event.name, shape=shape)
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
    command: CreateModel, dataset: DatasetState | None, model_id: str, at: Stamps
) -> ModelCreated:
    """Accept a new training job owned by who asks (a user or an admin), or raise naming the
    form field at fault."""
    who = access.writer(command.principal)
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
        username=who.username,
        group=command.group,
        dataset_id=dataset.dataset_id,
        spec=command.spec,
        form=command.form,
        actor=who.username,
        event_id=at.new_id(),
        occurred_at=at.now,
    )


def resume_point(state: ModelState) -> SnapshotSaved | None:
    """The snapshot a new attempt continues from: the last one with a resume state, if an
    earlier attempt started (a ticket redelivered after its trainer died)."""
    snapshot = state.last_snapshot
    if state.attempts == 0 or snapshot is None or snapshot.state is None:
        return None
    return snapshot


def decide_abort(state: ModelState | None, command: AbortModel, at: Stamps) -> list[ModelAborted]:
    """Abort a job that may still change, the owner's or (admin) anyone's; DIGITS forbids
    aborting one that has ended."""
    who = access.writer(command.principal)
    if state is None or state.deleted:
        raise ModelNotFound(command.model_id)
    actor = access.actor(who, state.username, "abort")
    if not state.status.is_running:
        raise NotAbortable()
    return [
        ModelAborted(
            model_id=state.model_id,
            reason="Aborted by user",
            actor=actor,
            event_id=at.new_id(),
            occurred_at=at.now,
        )
    ]


def decide_delete(state: ModelState | None, command: DeleteModel, at: Stamps) -> list[ModelDeleted]:
    """Delete a job, the owner's or (admin) anyone's (a running one stops: its trainer watches
    for this event)."""
    who = access.writer(command.principal)
    if state is None or state.deleted:
        raise ModelNotFound(command.model_id)
    actor = access.actor(who, state.username, "delete")
    return [
        ModelDeleted(
            model_id=command.model_id, actor=actor, event_id=at.new_id(), occurred_at=at.now
        )
    ]


def decide_edit(state: ModelState | None, command: EditModel, at: Stamps) -> list[ModelEdited]:
    """Rename and/or re-note a job of any status (DIGITS's `PUT /jobs/<id>`): its owner or an
    admin, a blank name refused, blank notes cleared; nothing appended when nothing changes."""
    who = access.writer(command.principal)
    if state is None or state.deleted:
        raise ModelNotFound(command.model_id)
    actor = access.actor(who, state.username, "edit")
    try:
        name, notes = edited(command.name, command.notes, state.name, state.notes)
    except ValueError as e:
        raise InvalidField("job_name", str(e)) from None
    try:
        tags = edited_tags(command.tags, state.tags)
    except ValueError as e:
        raise InvalidField("job_tags", str(e)) from None
    if name is None and notes is None and tags is None:
        return []
    edit = ModelEdited(
        model_id=state.model_id,
        name=name,
        notes=notes,
        tags=tags,
        actor=actor,
        event_id=at.new_id(),
        occurred_at=at.now,
    )
    return [edit]


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


def decide_takeover(
    state: ModelState, node_id: str, bound: int, at: Stamps
) -> list[WorkerLost | TrainingFailed]:
    """A ticket that finds its job Running was held by a trainer that is gone: its heartbeats
    stopped, so JetStream gave the ticket to us (a node that hands a job back, when drained,
    says Waiting first). Say so, once per takeover; at `bound` losses (0: none) end the job.

    Losses are counted here, not by JetStream's delivery count: a job waiting for devices or
    its dataset NAKs its ticket again and again, and each of those is a delivery too."""
    if state.status is not JobStatus.RUNNING:
        return []
    lost, losses = state.holder or "unknown", state.losses + 1
    ended = 0 < bound <= losses
    events: list[WorkerLost | TrainingFailed] = [
        WorkerLost(
            model_id=state.model_id,
            node_id=lost,
            taken_by=node_id,
            losses=losses,
            ended=ended,
            event_id=at.new_id(),
            occurred_at=at.now,
        )
    ]
    if ended:
        error = f"the worker was lost {losses} times while running this job; last on node {lost}"
        failed = TrainingFailed(
            model_id=state.model_id, error=error, event_id=at.new_id(), occurred_at=at.now
        )
        events.append(failed)
    return events


def decide_wait(state: ModelState, reason: str, at: Stamps) -> list[ModelWaiting]:
    """Say why the job waits, once: a redelivered ticket must not repeat the same event."""
    if state.status is JobStatus.WAITING and state.waiting_reason == reason:
        return []
    return [
        ModelWaiting(
            model_id=state.model_id, reason=reason, event_id=at.new_id(), occurred_at=at.now
        )
    ]


def pick_snapshot(previous: ModelState | None, epoch: float | None) -> SnapshotSaved:
    """A previous job's snapshot at `epoch` (None or 0: its latest); ValueError if none."""
    if previous is None or previous.deleted or previous.last_snapshot is None:
        raise ValueError("the previous network has no snapshot")
    if not epoch or epoch == previous.last_snapshot.epoch:
        return previous.last_snapshot
    found = [s for s in previous.snapshot_events if s.epoch == epoch]
    if not found:
        raise ValueError(f"the previous network has no snapshot at epoch {epoch:g}")
    return found[-1]
