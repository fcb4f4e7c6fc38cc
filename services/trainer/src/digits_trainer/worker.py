"""The train-model ticket: wait for the dataset and devices, then run one attempt on a lease."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from pathlib import Path

import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg

from digits_proto import codec, stamps, versions
from digits_proto.base import JobStatus
from digits_proto.models import ModelAborted, ModelWaiting, TrainingFailed, TrainModelTicket
from digits_proto.runtime import ConcurrencyError, Later, Outcome
from digits_trainer.cachebound import prune_cache
from digits_trainer.confine import remove_tree
from digits_trainer.domain import (
    WAITING_FOR_DEVICES,
    Gate,
    ModelState,
    dataset_gate,
    decide_takeover,
    decide_wait,
    evolve_model,
    fold_model,
)
from digits_trainer.errors import InvalidField
from digits_trainer.job import Attempt, Ending
from digits_trainer.leases import LeaseRefused, Leases
from digits_trainer.node import Node
from digits_trainer.places import QueuePlaces, retry_for
from digits_trainer.settings import Settings
from digits_trainer.spares import Spares
from digits_trainer.spec import check_crop
from digits_trainer.store import Store

log = structlog.get_logger(__name__)

# A drained node's ticket goes back at once: another node's trainer takes it.
HAND_BACK = Later(0.0)


@dataclass(frozen=True)
class Worker:
    """What the ticket handler needs."""

    nc: Client
    store: Store
    leases: Leases
    settings: Settings
    spares: Spares | None = None  # a training child started ahead (None: each starts fresh)
    places: QueuePlaces | None = None  # places in the device queue (None: not followed)
    node: Node | None = None  # this node's running jobs and drain (None: not tracked)


async def train_model(worker: Worker, msg: Msg) -> Outcome | Later:
    """Handle one ticket: ACK when the job has ended (or never will run), RETRY to wait."""
    ticket = versions.decode_event(codec.model_commands, msg.data, msg.headers)
    if not isinstance(ticket, TrainModelTicket):
        return Outcome.TERM
    if worker.node is not None and worker.node.draining:  # fetched as the drain began
        return HAND_BACK
    store, model_id = worker.store, ticket.model_id
    state, seq = await store.model(model_id)
    if state is None or state.deleted or not state.status.is_running:
        return Outcome.ACK
    if state.status is JobStatus.RUNNING:  # on a trainer that is gone
        taken = await take_over(worker, state, seq)
        if not isinstance(taken, tuple):
            return taken
        state, seq = taken

    dataset = await store.dataset(state.dataset_id)
    gate, reason = dataset_gate(dataset, state.dataset_id)
    if gate is Gate.ABORT:
        await append_quietly(
            store, model_id, ModelAborted(model_id=model_id, reason=reason), seq=seq
        )
        return Outcome.ACK
    if gate is Gate.WAIT:
        return await wait(store, state, seq, reason)
    assert dataset is not None and dataset.built is not None  # what Gate.READY means
    try:
        check_crop(state.spec, dataset.built)
        lease = await worker.leases.acquire(model_id, state)
    except (InvalidField, LeaseRefused) as e:
        await append_quietly(
            store, model_id, TrainingFailed(model_id=model_id, error=str(e)), seq=seq
        )
        return Outcome.ACK
    if lease is None:
        await wait(store, state, seq, WAITING_FOR_DEVICES)
        place = worker.places.place(model_id) if worker.places is not None else None
        return retry_for(worker.settings, place)

    if worker.node is not None and worker.node.draining:  # the drain began meanwhile
        await worker.leases.release(lease)
        # Taken over just now (Running): not to be counted lost a second time.
        await handed_back(store, model_id, f"Handed back by node {worker.settings.node_id}")
        return HAND_BACK
    log.info("training_job", model_id=model_id, lease_id=lease.lease_id, threads=lease.threads)
    attempt = Attempt(worker.nc, store, worker.settings, state, seq, worker.spares)
    # consume_tickets heartbeats meanwhile: a ticket only comes back when its trainer is gone.
    with worker.node.running(attempt) if worker.node else contextlib.nullcontext():
        try:
            async with worker.leases.hold(lease):
                ending = await attempt.run(dataset.built, lease)
        except asyncio.CancelledError:  # the service stops (SIGTERM): not a lost worker
            stopped = f"Handed back: node {worker.settings.node_id} stopped"
            with contextlib.suppress(Exception):  # the bus may be closing: then it counts lost
                await asyncio.wait_for(handed_back(store, model_id, stopped), 5.0)
            raise
    log.info("training_job_ended", model_id=model_id, ending=ending.value)
    # Ended for good (its log is in the bucket): the local folder (inputs, work files) goes.
    remove_tree(Path(worker.settings.data_dir) / "trainer" / "jobs" / model_id)
    cache, cache_bytes = Path(worker.settings.data_dir) / "cache", worker.settings.cache_mb << 20
    await asyncio.to_thread(prune_cache, cache, cache_bytes)
    if ending is Ending.DELETED:
        await store.forget_model(model_id)  # a snapshot or metric may have landed after the delete
    if ending is Ending.HANDED_BACK:
        await handed_back(store, model_id, f"Handed back by node {worker.settings.node_id}")
        return HAND_BACK
    return Outcome.ACK


async def take_over(
    worker: Worker, state: ModelState, seq: int
) -> tuple[ModelState, int] | Outcome | Later:
    """The job was Running on a trainer that is gone: record the loss (once: our append
    expects `seq`) and go on with the job, or end it Error at the bound (ACK)."""
    settings = worker.settings
    if worker.node is not None and state.model_id in worker.node.jobs:  # ours, still running
        return Later(settings.ack_wait)
    events = decide_takeover(state, settings.node_id, settings.max_deliver, stamps.live())
    try:
        seq = await worker.store.append(state.model_id, events, seq)
    except ConcurrencyError:
        return Outcome.RETRY  # the job changed meanwhile: the next delivery decides
    for event in events:
        state = evolve_model(state, event) or state
    log.warning(
        "worker_lost",
        model_id=state.model_id,
        lost_node=events[0].node_id,
        losses=state.losses,
        ended=not state.status.is_running,
    )
    if not state.status.is_running:  # its trainers were lost too often: it ended Error
        return Outcome.ACK
    return state, seq


async def handed_back(store: Store, model_id: str, reason: str) -> None:
    """A handed-back job (its node drains or stops) waits for another node, and says so
    before its ticket goes back: the next trainer must not count it as a lost worker."""

    def decide(events: list) -> list[ModelWaiting]:
        state = fold_model(events)
        if state is None or state.status is not JobStatus.RUNNING:
            return []
        return [ModelWaiting(model_id=model_id, reason=reason)]

    try:
        await store.update(model_id, decide)
    except Exception:  # the bus is failing: the ticket still goes back regardless
        log.exception("hand_back_unrecorded", model_id=model_id)


async def wait(store: Store, state: ModelState, seq: int, reason: str) -> Outcome:
    """Say (once) why the job waits, and have the ticket come back later."""
    await append_quietly(store, state.model_id, *decide_wait(state, reason, stamps.live()), seq=seq)
    return Outcome.RETRY


async def append_quietly(store: Store, model_id: str, *events, seq: int) -> None:
    """Append at `seq`; a conflict means the job changed meanwhile: the next delivery decides."""
    if not events:
        return
    try:
        await store.append(model_id, list(events), seq)
    except ConcurrencyError:
        log.info("ticket_state_changed", model_id=model_id)
