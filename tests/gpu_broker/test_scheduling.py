"""Real brokers and real trainers on one nats-server: the queue, priorities, nodes (slow-ish)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from digits_proto import codec, subjects
from digits_proto.base import JobStatus
from digits_proto.datasets import DatasetAborted
from digits_proto.gpus import LeaseAccepted, LeaseExpired, LeaseGranted
from digits_proto.models import AbortModel, TrainingStarted
from digits_proto.runtime import EventStore, ServiceHost, request
from digits_trainer import app as trainer_app
from digits_trainer.settings import Settings as TrainerSettings
from tests.fakes.principals import ALICE
from tests.gpu_broker.bus import acquire, last_queue, node_events, release
from tests.trainer.test_service import add_dataset, create, status_is, wait_for, wait_for_child

pytestmark = pytest.mark.timeout(120)


@contextlib.asynccontextmanager
async def trainer(
    nats_url: str, data_dir: Path, node_id: str, ack_wait: float = 30.0
) -> AsyncIterator[ServiceHost]:
    """One node's trainer service in this process until the block ends."""
    settings = TrainerSettings(
        nats_url=nats_url,
        data_dir=str(data_dir),
        port=-1,
        node_id=node_id,
        retry_delay=0.2,
        progress_every=0.5,
        ack_wait=ack_wait,
    )
    host = ServiceHost(subjects.SERVICE_TRAINER, nats_url, http_port=-1)
    task = asyncio.create_task(trainer_app.main(settings, host))
    deadline = time.monotonic() + 10
    while not host.ready:
        assert time.monotonic() < deadline and not task.done(), "trainer did not start"
        await asyncio.sleep(0.02)
    try:
        yield host
    finally:
        await host.nc.close()  # as tests/trainer do: drain would wait on the ticket fetches
        host.stop.set()
        await asyncio.wait_for(task, 15)


async def started(js, model_id: str) -> TrainingStarted | None:
    """The job's first TrainingStarted, if any."""
    events, _ = await EventStore(js, subjects.STREAM_MODELS, codec.model_events).load(
        subjects.model_events(model_id)
    )
    return next((e for e in events if isinstance(e, TrainingStarted)), None)


async def poll(check, timeout: float = 30.0):
    """Until `check()` returns something truthy."""
    deadline = time.monotonic() + timeout
    while not (found := await check()):
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.1)
    return found


async def test_one_slot_serves_priority_then_fifo_and_skips_aborted_and_unbuilt(
    start_broker, nats_url, js, nc, tmp_path
) -> None:
    """While another holder has the only slot: jobs queue (priority 5 first, then FIFO), one
    aborted while waiting never runs, one on a dataset still building waits for it."""
    await start_broker(None, node_id="n1", cpu_slots=1, lease_ttl=30.0)
    ready, _ = await add_dataset(js, tmp_path / "a")
    building, built_later = await add_dataset(js, tmp_path / "b", built=False)
    blocker = await acquire(nc, "someone-else", node="n1")
    assert isinstance(blocker, LeaseAccepted)
    async with trainer(nats_url, tmp_path / "data", "n1"):
        old = (await create(nc, ready)).id
        dropped = (await create(nc, ready)).id
        urgent = (await create(nc, ready, priority=5)).id
        later = (await create(nc, building)).id

        async def queued() -> list[str] | None:
            ids = [e.job_id for e in await last_queue(js)]
            return ids if len(ids) == 3 else None

        assert await poll(queued) == [urgent, old, dropped]
        await request(nc, subjects.CMD_MODELS_ABORT, AbortModel(model_id=dropped, principal=ALICE))

        async def dropped_left() -> bool:
            return [e.job_id for e in await last_queue(js)] == [urgent, old]

        await poll(dropped_left)
        await release(nc, blocker.lease_id)
        # urgent runs first; old only gets the slot once urgent ends (aborted here: quicker).
        await wait_for(js, urgent, status_is(JobStatus.RUNNING))
        assert await started(js, old) is None
        await request(nc, subjects.CMD_MODELS_ABORT, AbortModel(model_id=urgent, principal=ALICE))
        await wait_for(js, old, status_is(JobStatus.DONE))
        assert await started(js, dropped) is None
        await wait_for(js, dropped, status_is(JobStatus.ABORTED))
        await wait_for(js, later, status_is(JobStatus.WAITING))
        assert await started(js, later) is None
        store = EventStore(js, subjects.STREAM_DATASETS, codec.dataset_events)
        await store.append(subjects.dataset_events(building), [built_later], None)
        await wait_for(js, later, status_is(JobStatus.RUNNING))
        await request(nc, subjects.CMD_MODELS_ABORT, AbortModel(model_id=later, principal=ALICE))
        await wait_for(js, later, status_is(JobStatus.ABORTED))


async def test_a_job_on_a_dataset_that_is_aborted_is_aborted(
    start_broker, nats_url, js, nc, tmp_path
) -> None:
    """DIGITS's rule: a job waiting for a dataset that ends Aborted is aborted, never run."""
    await start_broker(None, node_id="n1", cpu_slots=1)
    building, _ = await add_dataset(js, tmp_path / "b", built=False)
    async with trainer(nats_url, tmp_path / "data", "n1"):
        job = (await create(nc, building)).id
        await wait_for(js, job, status_is(JobStatus.WAITING))
        store = EventStore(js, subjects.STREAM_DATASETS, codec.dataset_events)
        await store.append(
            subjects.dataset_events(building), [DatasetAborted(dataset_id=building)], None
        )
        await wait_for(js, job, status_is(JobStatus.ABORTED))
    assert await started(js, job) is None


async def test_jobs_spread_over_two_nodes_and_run_on_the_node_that_leased(
    start_broker, nats_url, js, nc, tmp_path
) -> None:
    """Two nodes with one slot each: two jobs run at once, one per node, each on its own
    node's devices (then both are aborted)."""
    await start_broker(None, node_id="n1", cpu_slots=1)
    await start_broker(None, node_id="n2", cpu_slots=1)
    dataset, _ = await add_dataset(js, tmp_path / "a")
    async with (
        trainer(nats_url, tmp_path / "d1", "n1"),
        trainer(nats_url, tmp_path / "d2", "n2"),
    ):
        jobs = [(await create(nc, dataset)).id for _ in range(2)]

        async def both_started() -> list[TrainingStarted] | None:
            found = [await started(js, job) for job in jobs]
            return found if all(found) else None  # type: ignore[return-value]

        starts = await poll(both_started)
        assert {s.node_id for s in starts} == {"n1", "n2"}
        for s in starts:  # each trainer got its lease from its own node's broker
            granted = [e for e in await node_events(js, s.node_id) if isinstance(e, LeaseGranted)]
            assert s.lease_id in {e.lease_id for e in granted}
        for job in jobs:
            await request(nc, subjects.CMD_MODELS_ABORT, AbortModel(model_id=job, principal=ALICE))
            await wait_for(js, job, status_is(JobStatus.ABORTED))


async def test_a_killed_node_loses_its_lease_and_its_job_finishes_on_another_node(
    start_broker, nats_url, js, nc, tmp_path
) -> None:
    """n1's trainer and broker die mid-job: n1's lease is recorded expired, the ticket comes
    back, and the job runs again on n2 until Done."""
    n1 = await start_broker(None, node_id="n1", cpu_slots=1, lease_ttl=1.0)
    dataset, _ = await add_dataset(js, tmp_path / "a")
    async with contextlib.AsyncExitStack() as node1:
        await node1.enter_async_context(trainer(nats_url, tmp_path / "d1", "n1", ack_wait=3.0))
        job = (await create(nc, dataset, train_epochs=4)).id
        first = await poll(lambda: started(js, job))
        assert first.node_id == "n1"
        await wait_for_child(job)
    n1.stop.set()  # the node is gone: its trainer (above) and its broker
    await start_broker(None, node_id="n2", cpu_slots=1, lease_ttl=1.0)
    async with trainer(nats_url, tmp_path / "d2", "n2", ack_wait=3.0):

        async def on_n2() -> TrainingStarted | None:
            events, _ = await EventStore(js, subjects.STREAM_MODELS, codec.model_events).load(
                subjects.model_events(job)
            )
            again = [e for e in events if isinstance(e, TrainingStarted) and e.node_id == "n2"]
            return again[0] if again else None

        await poll(on_n2)
        await wait_for(js, job, status_is(JobStatus.DONE))

    async def n1_lease_expired() -> bool:
        events = await node_events(js, "n1")
        return any(isinstance(e, LeaseExpired) and e.lease_id == first.lease_id for e in events)

    await poll(n1_lease_expired, timeout=10.0)
