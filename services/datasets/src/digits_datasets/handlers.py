"""Command handlers (nats.micro endpoints): validate, append events, reply `Accepted`."""

from __future__ import annotations

import asyncio
import contextlib
import re
from dataclasses import dataclass

import msgspec
import structlog
from nats.js import JetStreamContext

from digits_datasets import access, domain, example, purge, upload
from digits_datasets.dependents import ModelIndex
from digits_datasets.errors import DatasetNotFound
from digits_datasets.explore import Explorer
from digits_datasets.folders import check_folder, check_path
from digits_datasets.settings import Settings
from digits_proto import JobStatus, codec, headers, new_job_id, stamps, subjects, versions
from digits_proto.base import Principal
from digits_proto.datasets import (
    AbortDataset,
    BuildDatasetTicket,
    CreateDataset,
    DatasetCreated,
    DatasetEvent,
    DatasetRecord,
    DatasetSpec,
    DeleteDataset,
    EditDataset,
    ExploreDataset,
    ExploredPage,
    GetDatasetRecord,
    ResizedExample,
    ResizeExample,
)
from digits_proto.replies import Accepted
from digits_proto.runtime import (
    EventStore,
    append_created,
    create_msg_id,
    delete_prefix,
    keyed_before,
    publish_once,
    same_request,
    trace_headers,
)

log = structlog.get_logger(__name__)

JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

UPLOAD_FIELDS = (
    "textfile_train_images",
    "textfile_val_images",
    "textfile_test_images",
    "textfile_labels_file",
    "upload_archive",
)
TEXTFILE_LOCAL = (
    "textfile_local_train_images",
    "textfile_local_val_images",
    "textfile_local_test_images",
    "textfile_local_labels_file",
)


@dataclass
class Deps:
    """What the handlers need, passed explicitly."""

    js: JetStreamContext
    store: EventStore[DatasetEvent]
    settings: Settings
    models: ModelIndex
    explorer: Explorer | None = None
    retention_days: float = 7.0  # a deleted dataset's events are purged after this (0: at once)


def checked_sources(spec: DatasetSpec, roots: list[str]) -> DatasetSpec:
    """The spec with every server path checked (inside the roots, existing) and made real."""
    changes: dict[str, str] = {}
    if spec.method == "folder":
        changes["folder_train"] = check_folder(spec.folder_train, roots)
        for split in ("val", "test"):
            if folder := getattr(spec, f"folder_{split}"):
                changes[f"folder_{split}"] = check_folder(
                    folder, roots, f"folder_{split}", min_classes=1
                )
    elif spec.method == "textfile":
        for split in ("train", "val", "test"):
            if folder := getattr(spec, f"textfile_{split}_folder").strip():
                name = f"textfile_{split}_folder"
                changes[name] = check_path(folder, roots, name, directory=True)
        if spec.textfile_use_local_files:
            for name in TEXTFILE_LOCAL:
                if path := getattr(spec, name).strip():
                    changes[name] = check_path(path, roots, name)
    return msgspec.structs.replace(spec, **changes)


async def create_dataset(deps: Deps, command: CreateDataset) -> Accepted:
    """Validate what only this service knows (the folder), record the dataset, queue its build."""
    access.writer(command.principal)  # before any folder is looked at for who asks
    domain.validate_spec(command.name, command.spec)
    spec = checked_sources(domain.normalized(command.spec), deps.settings.roots())
    command = msgspec.structs.replace(command, spec=spec)
    dataset_id = new_job_id()
    events = domain.decide_create(dataset_id, command, stamps.live())
    subject = subjects.dataset_events(dataset_id)
    if not command.idempotency_key:
        seq = await deps.store.append(subject, events, 0)
    else:
        events = [_keyed(events[0], command), *events[1:]]
        msg_id = create_msg_id(events[0].actor, command.idempotency_key)
        seq, original = await append_created(deps.store, subject, events, msg_id)
        if isinstance(original, DatasetCreated):
            return await _first_answer(deps, command, original, seq)
    await _queue_build(deps.js, dataset_id)
    log.info("dataset_created", dataset_id=dataset_id, method=spec.method)
    return Accepted(
        id=dataset_id,
        name=events[0].name,
        status=JobStatus.INITIALIZED,
        stream=subjects.STREAM_DATASETS,
        seq=seq,
    )


def _keyed(event: DatasetEvent, command: CreateDataset) -> DatasetEvent:
    """The created event recording the client's key and request (for a retry to find)."""
    return msgspec.structs.replace(
        event, idempotency_key=command.idempotency_key, request_digest=command.request_digest
    )


async def _queue_build(js: JetStreamContext, dataset_id: str) -> None:
    """The build ticket (deduplicated by the dataset id)."""
    ticket = BuildDatasetTicket(dataset_id=dataset_id)
    hdrs = {headers.MSG_ID: dataset_id, headers.SCHEMA: versions.schema_header(ticket)}
    await publish_once(
        js,
        subjects.WORK_BUILD_DATASET,
        codec.encode(ticket),
        headers=trace_headers(hdrs, command=True),
    )


async def _first_answer(
    deps: Deps, command: CreateDataset, original: DatasetCreated, seq: int
) -> Accepted:
    """A retried create: the first one's dataset, not a second one. Its ticket is queued again
    (deduplicated) in case the first request failed between event and ticket; this retry's own
    uploads are of no use."""
    await _delete_uploads(deps.js, command.spec)
    same_request(original, command.request_digest)
    await _queue_build(deps.js, original.dataset_id)
    log.info("dataset_create_repeated", dataset_id=original.dataset_id)
    return Accepted(
        id=original.dataset_id,
        name=original.name,
        status=JobStatus.INITIALIZED,
        stream=subjects.STREAM_DATASETS,
        seq=seq,
    )


async def abort_dataset(deps: Deps, command: AbortDataset) -> Accepted:
    """Abort a build that is queued or running (the worker sees the event and stops)."""
    dataset_id = _checked_id(command.dataset_id)
    state = domain.DatasetState()

    def decide(events: list[DatasetEvent]) -> list[DatasetEvent]:
        nonlocal state
        state = domain.fold(events)
        if keyed_before(events, command.idempotency_key, _asker(command.principal)):
            return []  # a retried abort: the first one's answer, nothing new
        new = domain.decide_abort(state, command, stamps.live())
        key = command.idempotency_key
        return [msgspec.structs.replace(e, idempotency_key=key) for e in new] if key else new

    _, seq = await deps.store.update(subjects.dataset_events(dataset_id), decide)
    log.info("dataset_aborted", dataset_id=dataset_id)
    return Accepted(
        id=dataset_id,
        name=state.name,
        status=JobStatus.ABORTED,
        stream=subjects.STREAM_DATASETS,
        seq=seq,
    )


async def delete_dataset(deps: Deps, command: DeleteDataset) -> Accepted:
    """Delete a dataset no model depends on, then its blobs."""
    dataset_id = _checked_id(command.dataset_id)
    await deps.models.caught_up(deps.js)
    state = domain.DatasetState()

    def decide(events: list[DatasetEvent]) -> list[DatasetEvent]:
        nonlocal state
        state = domain.fold(events)
        return domain.decide_delete(
            state, command, deps.models.models_using(dataset_id), stamps.live()
        )

    _, seq = await deps.store.update(subjects.dataset_events(dataset_id), decide)
    removed = await delete_prefix(deps.js, subjects.BUCKET_DATASETS, upload.blob_prefix(dataset_id))
    removed += await _delete_uploads(deps.js, state.spec)
    log.info("dataset_deleted", dataset_id=dataset_id, blobs=removed)
    if deps.retention_days <= 0:  # no window: its events go now, behind their tombstone
        seq = await purge.purge_dataset(deps.js, deps.store, dataset_id) or seq
    return Accepted(
        id=dataset_id,
        name=state.name,
        status=state.status or JobStatus.DONE,
        stream=subjects.STREAM_DATASETS,
        seq=seq,
    )


async def edit_dataset(deps: Deps, command: EditDataset) -> Accepted:
    """Rename a dataset and/or change its notes, whatever its status (a running build's next
    append conflicts, reloads and goes on)."""
    dataset_id = _checked_id(command.dataset_id)
    state = domain.DatasetState()

    def decide(events: list[DatasetEvent]) -> list[DatasetEvent]:
        nonlocal state
        state = domain.fold(events)
        new = domain.decide_edit(state, command, stamps.live())
        state = domain.fold([*events, *new])
        return new

    _, seq = await deps.store.update(subjects.dataset_events(dataset_id), decide)
    log.info("dataset_edited", dataset_id=dataset_id)
    return Accepted(
        id=dataset_id,
        name=state.name,
        status=state.status or JobStatus.DONE,
        stream=subjects.STREAM_DATASETS,
        seq=seq,
    )


def _asker(principal: Principal | None) -> str:
    return principal.username if principal is not None else ""


def _checked_id(dataset_id: str) -> str:
    """The id, when it can name a subject token (never a wildcard in a subject)."""
    if not JOB_ID.match(dataset_id):
        raise DatasetNotFound(dataset_id)
    return dataset_id


async def _delete_uploads(js: JetStreamContext, spec: DatasetSpec | None) -> int:
    """The uploaded lists/archive of a deleted dataset (each belongs to one dataset)."""
    refs = [getattr(spec, name, None) for name in UPLOAD_FIELDS] if spec else []
    count = 0
    store = await js.object_store(subjects.BUCKET_UPLOADS)
    for ref in refs:
        if ref is not None:
            with contextlib.suppress(Exception):  # already gone
                await store.delete(ref.name)
                count += 1
    return count


async def resize_example(deps: Deps, command: ResizeExample) -> ResizedExample:
    """Resize the form's sample image off the event loop (Pillow holds the GIL little)."""
    access.reader(command.principal)
    return await asyncio.to_thread(example.resize_example, command, deps.settings.max_pixels)


async def explore_dataset(deps: Deps, query: ExploreDataset) -> ExploredPage:
    """A page of a built split's records (DIGITS's explore)."""
    access.reader(query.principal)
    assert deps.explorer is not None
    return await deps.explorer.page(query)


async def get_record(deps: Deps, query: GetDatasetRecord) -> DatasetRecord:
    """One record's image, for the explore page."""
    access.reader(query.principal)
    assert deps.explorer is not None
    return await deps.explorer.record(query)
