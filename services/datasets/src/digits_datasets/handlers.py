"""Command handlers (nats.micro endpoints): validate, append events, reply `Accepted`."""

from __future__ import annotations

from dataclasses import dataclass

import msgspec
import structlog
from nats.js import JetStreamContext

from digits_datasets import domain, upload
from digits_datasets.dependents import ModelIndex
from digits_datasets.folders import check_folder
from digits_datasets.settings import Settings
from digits_proto import JobStatus, codec, headers, new_job_id, subjects
from digits_proto.datasets import (
    AbortDataset,
    BuildDatasetTicket,
    CreateDataset,
    DatasetEvent,
    DeleteDataset,
)
from digits_proto.replies import Accepted
from digits_proto.runtime import EventStore, delete_prefix

log = structlog.get_logger(__name__)


@dataclass
class Deps:
    """What the handlers need, passed explicitly."""

    js: JetStreamContext
    store: EventStore[DatasetEvent]
    settings: Settings
    models: ModelIndex


async def create_dataset(deps: Deps, command: CreateDataset) -> Accepted:
    """Validate what only this service knows (the folder), record the dataset, queue its build."""
    domain.validate_spec(command.name, command.spec)
    real = check_folder(command.spec.folder_train, deps.settings.roots())
    spec = msgspec.structs.replace(command.spec, folder_train=real)
    command = msgspec.structs.replace(command, spec=spec)
    dataset_id = new_job_id()
    events = domain.decide_create(dataset_id, command)
    seq = await deps.store.append(subjects.dataset_events(dataset_id), events, 0)
    await deps.js.publish(
        subjects.WORK_BUILD_DATASET,
        codec.encode(BuildDatasetTicket(dataset_id=dataset_id)),
        headers={headers.MSG_ID: dataset_id},
    )
    log.info("dataset_created", dataset_id=dataset_id, folder=real)
    return Accepted(
        id=dataset_id, name=events[0].name, status=JobStatus.INITIALIZED,
        stream=subjects.STREAM_DATASETS, seq=seq,
    )


async def abort_dataset(deps: Deps, command: AbortDataset) -> Accepted:
    """Abort a build that is queued or running (the worker sees the event and stops)."""
    dataset_id = command.dataset_id
    state = domain.DatasetState()

    def decide(events: list[DatasetEvent]) -> list[DatasetEvent]:
        nonlocal state
        state = domain.fold(events)
        return domain.decide_abort(state, dataset_id)

    _, seq = await deps.store.update(subjects.dataset_events(dataset_id), decide)
    log.info("dataset_aborted", dataset_id=dataset_id)
    return Accepted(
        id=dataset_id, name=state.name, status=JobStatus.ABORTED,
        stream=subjects.STREAM_DATASETS, seq=seq,
    )


async def delete_dataset(deps: Deps, command: DeleteDataset) -> Accepted:
    """Delete a dataset no model depends on, then its blobs."""
    dataset_id = command.dataset_id
    await deps.models.caught_up(deps.js)
    state = domain.DatasetState()

    def decide(events: list[DatasetEvent]) -> list[DatasetEvent]:
        nonlocal state
        state = domain.fold(events)
        return domain.decide_delete(state, dataset_id, deps.models.models_using(dataset_id))

    _, seq = await deps.store.update(subjects.dataset_events(dataset_id), decide)
    removed = await delete_prefix(
        deps.js, subjects.BUCKET_DATASETS, upload.blob_prefix(dataset_id)
    )
    log.info("dataset_deleted", dataset_id=dataset_id, blobs=removed)
    return Accepted(
        id=dataset_id, name=state.name, status=state.status or JobStatus.DONE,
        stream=subjects.STREAM_DATASETS, seq=seq,
    )
