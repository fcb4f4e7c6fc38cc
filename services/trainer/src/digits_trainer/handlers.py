"""Command handlers: create, abort and delete a training job (thin: load, decide, append)."""

from __future__ import annotations

from functools import partial
from typing import TypeVar

from digits_proto import new_job_id, subjects
from digits_proto.base import JobStatus
from digits_proto.models import AbortModel, CreateModel, DeleteModel, ModelEvents
from digits_proto.replies import Accepted
from digits_proto.runtime import DomainError
from digits_trainer.domain import (
    ModelState,
    decide_abort,
    decide_create,
    decide_delete,
    fold_model,
)
from digits_trainer.errors import InvalidField, ModelNotFound
from digits_trainer.store import Store, valid_job_id

T = TypeVar("T")


async def create_model(store: Store, command: object) -> Accepted:
    """Accept a training job on an existing dataset, then queue its ticket."""
    command = expect(command, CreateModel)
    if not valid_job_id(command.dataset_id):
        raise InvalidField("dataset", "Not a valid choice")
    dataset = await store.dataset(command.dataset_id)
    model_id = new_job_id()
    created = decide_create(command, dataset, model_id)
    seq = await store.append(model_id, [created], 0)
    await store.submit_ticket(model_id)
    return Accepted(
        id=model_id,
        name=created.name,
        status=JobStatus.INITIALIZED,
        stream=subjects.STREAM_MODELS,
        seq=seq,
    )


async def abort_model(store: Store, command: object) -> Accepted:
    """Abort a job that has not ended; its trainer sees the event and stops the child."""
    command = expect(command, AbortModel)
    if not valid_job_id(command.model_id):
        raise ModelNotFound(command.model_id)
    seq = await store.update(command.model_id, lambda h: decide_abort(fold_model(h), command))
    return Accepted(
        id=command.model_id, status=JobStatus.ABORTED, stream=subjects.STREAM_MODELS, seq=seq
    )


async def delete_model(store: Store, command: object) -> Accepted:
    """Delete a job (stopping it if it runs), its snapshots and its metrics."""
    command = expect(command, DeleteModel)
    if not valid_job_id(command.model_id):
        raise ModelNotFound(command.model_id)
    seen: list[ModelState] = []

    def decide(history: list[ModelEvents]):
        state = fold_model(history)
        seen[:] = [state] if state else []
        return decide_delete(state, command.model_id)

    seq = await store.update(command.model_id, decide)
    await store.forget_model(command.model_id)
    return Accepted(
        id=command.model_id,
        name=seen[0].name,
        status=seen[0].status,
        stream=subjects.STREAM_MODELS,
        seq=seq,
    )


def expect(command: object, kind: type[T]) -> T:
    """The command, if it is the kind this endpoint serves."""
    if not isinstance(command, kind):
        raise DomainError(f"expected {kind.__name__}, got {type(command).__name__}")
    return command


def command_handlers(store: Store):
    """The endpoint table: subject → handler."""
    return {
        subjects.CMD_MODELS_CREATE: partial(create_model, store),
        subjects.CMD_MODELS_ABORT: partial(abort_model, store),
        subjects.CMD_MODELS_DELETE: partial(delete_model, store),
    }
