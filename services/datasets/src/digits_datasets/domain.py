"""The dataset aggregate, pure: fold its events into a state, decide what a command appends."""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from digits_datasets import access
from digits_datasets.errors import (
    DatasetNotFound,
    HasDependentModels,
    InvalidField,
    NotAbortable,
)
from digits_imaging import RESIZE_MODES
from digits_proto import JobStatus
from digits_proto.base import edited, edited_tags
from digits_proto.datasets import (
    AbortDataset,
    CreateDataset,
    DatasetAborted,
    DatasetBuildStarted,
    DatasetBuilt,
    DatasetCreated,
    DatasetDeleted,
    DatasetEdited,
    DatasetEvent,
    DatasetFailed,
    DatasetFolderParsed,
    DatasetSpec,
    DeleteDataset,
    EditDataset,
)
from digits_proto.stamps import Stamps

METHODS = ("folder", "textfile", "upload")
ENCODINGS = ("png", "jpg", "none")
BACKENDS = ("recordio",)
# Old scripts send DIGITS's backends; both are stored as RecordIO (the JSON says recordio).
BACKEND_ALIASES = {"lmdb": "recordio", "hdf5": "recordio"}
MAX_SIDE = 8192


class DatasetState(msgspec.Struct, frozen=True, kw_only=True):
    """What the service needs to know about one dataset; `status` None = never created."""

    dataset_id: str = ""
    name: str = ""
    username: str = ""
    notes: str = ""
    tags: tuple[str, ...] = ()
    status: JobStatus | None = None
    deleted: bool = False
    spec: DatasetSpec | None = None
    labels: list[str] = []
    built: DatasetBuilt | None = None  # the blobs, once Done

    @property
    def exists(self) -> bool:
        """Created and not deleted."""
        return self.status is not None and not self.deleted

    @property
    def building(self) -> bool:
        """A build may (still) run: Initialized or Running, not deleted."""
        return self.exists and self.status in (JobStatus.INITIALIZED, JobStatus.RUNNING)


def evolve(state: DatasetState, event: DatasetEvent) -> DatasetState:
    """The state after one event (progress events change nothing)."""
    replace = msgspec.structs.replace
    match event:
        case DatasetCreated():
            return DatasetState(
                dataset_id=event.dataset_id,
                name=event.name,
                username=event.username,
                status=JobStatus.INITIALIZED,
                spec=event.spec,
            )
        case DatasetBuildStarted():
            return replace(state, status=JobStatus.RUNNING)
        case DatasetFolderParsed():
            return replace(state, labels=list(event.labels))
        case DatasetBuilt():
            return replace(state, status=JobStatus.DONE, labels=list(event.labels), built=event)
        case DatasetFailed():
            return replace(state, status=JobStatus.ERROR)
        case DatasetAborted():
            return replace(state, status=JobStatus.ABORTED)
        case DatasetDeleted():
            return replace(state, deleted=True)
        case DatasetEdited():
            return replace(
                state,
                name=state.name if event.name is None else event.name,
                notes=state.notes if event.notes is None else event.notes,
                tags=state.tags if event.tags is None else tuple(event.tags),
            )
    return state


def fold(events: Iterable[DatasetEvent]) -> DatasetState:
    """The state after a whole history."""
    state = DatasetState()
    for event in events:
        state = evolve(state, event)
    return state


def validate_spec(name: str, spec: DatasetSpec) -> None:
    """Refuse a spec whose fields are out of range (pure checks; folder checks need I/O)."""
    if not name.strip():
        raise InvalidField("dataset_name", "Dataset name is required")
    _one_of("method", spec.method, METHODS)
    _validate_folder_numbers(spec)
    if spec.method == "textfile":
        _validate_textfile(spec)
    if spec.method == "upload" and spec.upload_archive is None:
        raise InvalidField("upload_archive", "upload_archive is required (a zip or tar file)")
    for field in ("resize_width", "resize_height"):
        if not 1 <= getattr(spec, field) <= MAX_SIDE:
            raise InvalidField(field, f"{field} must be between 1 and {MAX_SIDE}")
    if spec.resize_channels not in (1, 3):
        raise InvalidField("resize_channels", "resize_channels must be 1 or 3")
    _one_of("resize_mode", spec.resize_mode, RESIZE_MODES)
    _one_of("encoding", spec.encoding, ENCODINGS)
    _one_of("backend", BACKEND_ALIASES.get(spec.backend, spec.backend), BACKENDS)


def normalized(spec: DatasetSpec) -> DatasetSpec:
    """The spec as it is built: backend aliases resolved, unused extra folders cleared."""
    return msgspec.structs.replace(
        spec,
        backend=BACKEND_ALIASES.get(spec.backend, spec.backend),
        folder_val=spec.folder_val if spec.has_val_folder else "",
        folder_test=spec.folder_test if spec.has_test_folder else "",
    )


def _validate_textfile(spec: DatasetSpec) -> None:
    # DIGITS §1.3: each list in use (and the labels file) is required, uploaded or local.
    wanted = ["train"]
    wanted += ["val"] if spec.textfile_use_val else []
    wanted += ["test"] if spec.textfile_use_test else []
    local = spec.textfile_use_local_files
    for split in wanted:
        if local and not getattr(spec, f"textfile_local_{split}_images").strip():
            raise InvalidField(f"textfile_local_{split}_images", "a server path is required")
        if not local and getattr(spec, f"textfile_{split}_images") is None:
            raise InvalidField(f"textfile_{split}_images", "an uploaded file is required")
    if local and not spec.textfile_local_labels_file.strip():
        raise InvalidField("textfile_local_labels_file", "a server path is required")
    if not local and spec.textfile_labels_file is None:
        raise InvalidField("textfile_labels_file", "an uploaded labels file is required")


def _validate_folder_numbers(spec: DatasetSpec) -> None:
    for field in ("folder_pct_val", "folder_pct_test"):
        if not 0 <= getattr(spec, field) <= 100:
            raise InvalidField(field, f"{field} must be between 0 and 100")
    if spec.folder_pct_val + spec.folder_pct_test > 100:
        raise InvalidField("folder_pct_val", "folder_pct_val + folder_pct_test must not exceed 100")
    for split in ("train", "val", "test"):
        low = getattr(spec, f"folder_{split}_min_per_class")
        top = getattr(spec, f"folder_{split}_max_per_class")
        if low < 1:
            raise InvalidField(f"folder_{split}_min_per_class", "must be at least 1")
        if top is not None and top < low:
            raise InvalidField(
                f"folder_{split}_max_per_class",
                "must be at least 1 and not less than the minimum",
            )
    for split in ("val", "test"):
        if getattr(spec, f"has_{split}_folder") and not getattr(spec, f"folder_{split}").strip():
            raise InvalidField(f"folder_{split}", f"folder_{split} is required")


def _one_of(field: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise InvalidField(field, f"{field} must be one of {', '.join(allowed)}")


def decide_create(dataset_id: str, command: CreateDataset, at: Stamps) -> list[DatasetEvent]:
    """A new dataset owned by who asks, a user or an admin (the spec has been validated,
    folder included)."""
    who = access.writer(command.principal)
    validate_spec(command.name, command.spec)
    return [
        DatasetCreated(
            dataset_id=dataset_id,
            name=command.name.strip(),
            username=who.username,
            group=command.group,
            spec=normalized(command.spec),
            form=dict(command.form),
            actor=who.username,
            event_id=at.new_id(),
            occurred_at=at.now,
        )
    ]


def decide_abort(state: DatasetState, command: AbortDataset, at: Stamps) -> list[DatasetEvent]:
    """Abort a build that may still run, the owner's or (admin) anyone's; DIGITS answers 403
    otherwise."""
    who = access.writer(command.principal)
    if not state.exists:
        raise DatasetNotFound(command.dataset_id)
    actor = access.actor(who, state.username, "abort")
    if not state.building:
        raise NotAbortable()
    return [
        DatasetAborted(
            dataset_id=command.dataset_id, actor=actor, event_id=at.new_id(), occurred_at=at.now
        )
    ]


def decide_delete(
    state: DatasetState, command: DeleteDataset, dependent_models: list[str], at: Stamps
) -> list[DatasetEvent]:
    """Delete a dataset no live model uses, the owner's or (admin) anyone's (a running build
    stops on seeing the event)."""
    who = access.writer(command.principal)
    if not state.exists:
        raise DatasetNotFound(command.dataset_id)
    actor = access.actor(who, state.username, "delete")
    if dependent_models:
        raise HasDependentModels(command.dataset_id, sorted(dependent_models))
    return [
        DatasetDeleted(
            dataset_id=command.dataset_id, actor=actor, event_id=at.new_id(), occurred_at=at.now
        )
    ]


def decide_edit(state: DatasetState, command: EditDataset, at: Stamps) -> list[DatasetEvent]:
    """Rename and/or re-note a dataset of any status (DIGITS's `PUT /jobs/<id>`): its owner or
    an admin, a blank name refused, blank notes cleared; nothing appended when nothing changes."""
    who = access.writer(command.principal)
    if not state.exists:
        raise DatasetNotFound(command.dataset_id)
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
    return [
        DatasetEdited(
            dataset_id=state.dataset_id,
            name=name,
            notes=notes,
            tags=tags,
            actor=actor,
            event_id=at.new_id(),
            occurred_at=at.now,
        )
    ]


def decide_start(state: DatasetState, worker: str, at: Stamps) -> list[DatasetEvent]:
    """Start (or, after a dead worker, restart) a build; nothing if it is over or gone."""
    if not state.building:
        return []
    return [
        DatasetBuildStarted(
            dataset_id=state.dataset_id, worker=worker, event_id=at.new_id(), occurred_at=at.now
        )
    ]


def decide_step(state: DatasetState, event: DatasetEvent) -> list[DatasetEvent]:
    """A build step (parsed, progress, built, failed) is recorded only while the build runs."""
    if not state.exists or state.status is not JobStatus.RUNNING:
        return []
    return [event]
