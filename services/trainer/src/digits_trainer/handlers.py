"""Command handlers: create, abort and delete a training job (thin: load, decide, append)."""

from __future__ import annotations

from functools import partial

import msgspec

from digits_proto import new_job_id, stamps, subjects
from digits_proto.base import JobStatus
from digits_proto.models import (
    AbortModel,
    CreateModel,
    CustomizeNetwork,
    DeleteModel,
    EditModel,
    ModelAborted,
    ModelCreated,
    ModelEvents,
    NetworkGraph,
    NetworkSource,
    TrainSpec,
    VisualizeNetwork,
)
from digits_proto.replies import Accepted
from digits_proto.runtime import (
    append_created,
    create_msg_id,
    keyed_before,
    same_request,
)
from digits_trainer import access, pretrained
from digits_trainer.domain import (
    ModelState,
    decide_abort,
    decide_create,
    decide_delete,
    decide_edit,
    fold_model,
    pick_snapshot,
)
from digits_trainer.errors import InvalidField, ModelNotFound
from digits_trainer.networks import STANDARD
from digits_trainer.networks import source as standard_source
from digits_trainer.purge import purge_model
from digits_trainer.sandbox import Sandbox
from digits_trainer.store import Store, valid_job_id


async def create_model(store: Store, sandbox: Sandbox, command: CreateModel) -> Accepted:
    """Accept a training job on an existing dataset, then queue its ticket.

    A custom network is first built and run on one batch in the sandbox; a previous network
    must have the snapshot asked for, and its network becomes this job's.
    """
    access.writer(command.principal)  # before anything is read or run for who asks
    if not valid_job_id(command.dataset_id):
        raise InvalidField("dataset", "Not a valid choice")
    dataset = await store.dataset(command.dataset_id)
    model_id = new_job_id()
    spec = command.spec
    if spec.method in ("previous", "pretrained"):
        spec = await previous_spec(store, spec)
        command = msgspec.structs.replace(command, spec=spec)
    created = decide_create(command, dataset, model_id, stamps.live())
    if spec.method == "custom" and dataset is not None:
        classes, shape = dataset.input_shape(spec)
        await sandbox.check(spec.custom_network, classes, list(shape), asker(command))
    elif spec.method != "standard" and spec.custom_network.strip():  # fine-tuning from source
        sandbox.require()
    if not command.idempotency_key:
        seq = await store.append(model_id, [created], 0)
    else:
        created = msgspec.structs.replace(
            created,
            idempotency_key=command.idempotency_key,
            request_digest=command.request_digest,
        )
        msg_id = create_msg_id(created.actor, command.idempotency_key)
        subject = subjects.model_events(model_id)
        seq, original = await append_created(store.models, subject, [created], msg_id)
        if isinstance(original, ModelCreated):
            return await _first_answer(store, command, original, seq)
    await store.submit_ticket(model_id)
    return Accepted(
        id=model_id,
        name=created.name,
        status=JobStatus.INITIALIZED,
        stream=subjects.STREAM_MODELS,
        seq=seq,
    )


async def _first_answer(
    store: Store, command: CreateModel, original: ModelCreated, seq: int
) -> Accepted:
    """A retried create: the first one's job, not a second one (its ticket queued again,
    deduplicated, in case the first request failed between event and ticket)."""
    same_request(original, command.request_digest)
    await store.submit_ticket(original.model_id)
    return Accepted(
        id=original.model_id,
        name=original.name,
        status=JobStatus.INITIALIZED,
        stream=subjects.STREAM_MODELS,
        seq=seq,
    )


async def abort_model(store: Store, command: AbortModel) -> Accepted:
    """Abort a job that has not ended; its trainer sees the event and stops the child. A retry
    under the same Idempotency-Key gets the first answer."""
    if not valid_job_id(command.model_id):
        raise ModelNotFound(command.model_id)
    key = command.idempotency_key
    asker = command.principal.username if command.principal is not None else ""

    def decide(history: list[ModelEvents]) -> list[ModelAborted]:
        if keyed_before(history, key, asker):
            return []  # a retried abort: nothing new
        new = decide_abort(fold_model(history), command, stamps.live())
        return [msgspec.structs.replace(e, idempotency_key=key) for e in new] if key else new

    seq = await store.update(command.model_id, decide)
    return Accepted(
        id=command.model_id, status=JobStatus.ABORTED, stream=subjects.STREAM_MODELS, seq=seq
    )


async def delete_model(store: Store, command: DeleteModel, retention_days: float = 7.0) -> Accepted:
    """Delete a job (stopping it if it runs), its snapshots and its metrics; with no retention
    window its events go at once, behind their tombstone (whose sequence the answer carries)."""
    if not valid_job_id(command.model_id):
        raise ModelNotFound(command.model_id)
    seen: list[ModelState] = []

    def decide(history: list[ModelEvents]):
        state = fold_model(history)
        seen[:] = [state] if state else []
        return decide_delete(state, command, stamps.live())

    seq = await store.update(command.model_id, decide)
    await store.forget_model(command.model_id)
    if retention_days <= 0:
        seq = await purge_model(store, command.model_id) or seq
    return Accepted(
        id=command.model_id,
        name=seen[0].name,
        status=seen[0].status,
        stream=subjects.STREAM_MODELS,
        seq=seq,
    )


async def edit_model(store: Store, command: EditModel) -> Accepted:
    """Rename a job and/or change its notes, whatever its status (a running attempt's next
    append conflicts, reloads and goes on)."""
    if not valid_job_id(command.model_id):
        raise ModelNotFound(command.model_id)
    seen: list[ModelState] = []

    def decide(history: list[ModelEvents]):
        new = decide_edit(fold_model(history), command, stamps.live())
        seen[:] = [s] if (s := fold_model([*history, *new])) else []
        return new

    seq = await store.update(command.model_id, decide)
    return Accepted(
        id=command.model_id,
        name=seen[0].name,
        status=seen[0].status,
        stream=subjects.STREAM_MODELS,
        seq=seq,
    )


async def previous_spec(store: Store, spec: TrainSpec) -> TrainSpec:
    """The spec with the previous job's network in it (its standard name or custom source)."""
    job_id = spec.previous_network
    previous, _ = await store.model(job_id) if valid_job_id(job_id) else (None, 0)
    field = f"{spec.method}_networks"
    if spec.method == "pretrained":
        if previous is None or previous.deleted or not previous.pretrained:
            raise InvalidField(field, f"Not a valid choice: {job_id!r} is no pretrained model")
        if not previous.spec.custom_network.strip() and not previous.spec.standard_network:
            raise InvalidField(field, "This pretrained model cannot be fine-tuned (no network)")
    try:
        await store.start_snapshot(job_id, spec.previous_snapshot)
    except ValueError as e:
        raise InvalidField(field, f"{e}") from None
    assert previous is not None
    code = previous.spec.custom_network if previous.spec.custom_network.strip() else ""
    return msgspec.structs.replace(
        spec, standard_network=previous.spec.standard_network, custom_network=code
    )


async def customize(store: Store, command: CustomizeNetwork) -> NetworkSource:
    """A network's editable Gluon source: a standard name, or a previous job's network and
    snapshot (DIGITS's "Customize" button)."""
    access.reader(command.principal)
    name = command.network
    if name in STANDARD:
        return NetworkSource(network=standard_source(name))
    previous, _ = await store.model(name) if valid_job_id(name) else (None, 0)
    if previous is None or previous.deleted:
        raise InvalidField("network", f"Unknown network {name!r}")
    spec = previous.spec
    if not spec.custom_network.strip() and spec.standard_network not in STANDARD:
        raise InvalidField("network", f"{name} has no network source (a pretrained model)")
    code = (
        spec.custom_network
        if spec.custom_network.strip()
        else standard_source(spec.standard_network)
    )
    snapshot = None
    if previous.last_snapshot is not None:
        try:
            snapshot = pick_snapshot(previous, command.snapshot_epoch).epoch
        except ValueError as e:
            raise InvalidField("snapshot_epoch", f"{e}") from None
    return NetworkSource(network=code, snapshot=snapshot)


async def visualize(store: Store, sandbox: Sandbox, command: VisualizeNetwork) -> NetworkGraph:
    """Build network source in the sandbox and describe its graph for the browser to draw."""
    access.writer(command.principal)  # it runs code: a user's or admin's tool, not a viewer's
    if not command.custom_network.strip():
        raise InvalidField("custom_network", "This field is required.")
    classes, shape = command.classes or 10, command.input_shape or [3, 32, 32]
    if command.dataset_id:
        dataset = (
            await store.dataset(command.dataset_id) if valid_job_id(command.dataset_id) else None
        )
        if dataset is None or dataset.deleted:
            raise InvalidField("dataset_id", "Not a valid choice")
        known, dims = dataset.input_shape(TrainSpec())
        classes = command.classes or (known if dataset.built is not None else classes)
        shape = command.input_shape or list(dims)
    if len(shape) != 3 or min(shape) < 1 or max(shape) > 4096 or classes < 1:
        raise InvalidField("input_shape", "Must be [channels, height, width] and classes ≥ 1")
    return await sandbox.check(command.custom_network, classes, list(shape), asker(command))


def asker(command: CreateModel | VisualizeNetwork) -> str:
    """Whose queue a network check waits in: the principal's username ("" if none)."""
    return command.principal.username if command.principal is not None else ""


def command_handlers(
    store: Store, sandbox: Sandbox, imports: pretrained.Imports, retention_days: float = 7.0
):
    """The endpoint table: subject → handler (`retention_days`: deleted jobs' events kept)."""
    return {
        subjects.CMD_MODELS_CREATE: partial(create_model, store, sandbox),
        subjects.CMD_MODELS_CUSTOMIZE: partial(customize, store),
        subjects.CMD_MODELS_VISUALIZE: partial(visualize, store, sandbox),
        subjects.CMD_MODELS_ABORT: partial(abort_model, store),
        subjects.CMD_MODELS_DELETE: partial(delete_model, store, retention_days=retention_days),
        subjects.CMD_MODELS_PRETRAINED: partial(pretrained.create_pretrained, store, imports),
        subjects.CMD_MODELS_TO_PRETRAINED: partial(pretrained.make_pretrained, store, imports),
        subjects.CMD_MODELS_EDIT: partial(edit_model, store),
    }
