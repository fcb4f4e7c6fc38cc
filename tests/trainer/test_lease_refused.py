"""A lease the gpu-broker stops renewing (here: its key deleted and the device taken by another
holder) stops its job at the next metric point and sends it back to the queue; it finishes from
that point once the device is granted again. A real gpu-broker and trainer on one nats-server."""

from __future__ import annotations

import pytest

from digits_proto import codec, subjects
from digits_proto.base import JobStatus
from digits_proto.gpus import LeaseAccepted
from digits_proto.models import (
    MetricsRecorded,
    ModelWaiting,
    TrainingFailed,
    TrainingStarted,
)
from digits_proto.replies import Rejected
from digits_proto.runtime import EventStore
from digits_trainer.domain import WAITING_FOR_DEVICES
from digits_trainer.leases import lost_for_good
from tests.gpu_broker.bus import acquire, release
from tests.gpu_broker.conftest import start_broker  # noqa: F401 - the fixture, used below
from tests.trainer.test_drain import node, poll_json
from tests.trainer.test_service import add_dataset, create, status_is, stored_log, wait_for

pytestmark = pytest.mark.timeout(240)


async def test_a_job_whose_lease_is_refused_requeues_and_resumes_from_its_point(
    start_broker,  # noqa: F811 - the fixture imported above
    nats_url,
    js,
    nc,
    tmp_path,
):
    """Running on the node's only slot, the job's lease key is deleted and another holder takes
    the slot: the next renewal is refused (404), the job writes a resume point at its next
    metric point, hands its ticket back and waits (its history says why); once the slot is
    released it resumes from that point to Done, no metric point recorded twice."""
    await start_broker(None, node_id="n1", cpu_slots=1, lease_ttl=3.0)
    dataset_id, _ = await add_dataset(js, tmp_path / "toy")
    async with node(nats_url, tmp_path / "a", "n1") as trainer:
        reply = await create(nc, dataset_id, train_epochs=100, val_interval=1, snapshot_interval=0)
        [job] = await poll_json(trainer, "/jobs", lambda jobs: jobs and jobs[0]["epoch"] >= 1.0)
        lease_id = job["lease_id"]

        kv = await js.key_value(subjects.KV_LEASES)
        keys = [k for k in await kv.keys() if lease_id.encode() in (await kv.get(k)).value]
        assert keys, "the job's lease has no key"
        for key in keys:
            await kv.delete(key)
        blocker = await acquire(nc, "someone-else", holder="other", node="n1")
        assert isinstance(blocker, LeaseAccepted), blocker

        def lost(events) -> bool:
            return any(
                isinstance(e, ModelWaiting) and "lease lost" in e.reason.lower() for e in events
            )

        events = await wait_for(js, reply.id, lost, timeout=60)
        await wait_for(js, reply.id, status_is(JobStatus.WAITING), timeout=30)
        [first] = [e for e in events if isinstance(e, TrainingStarted)]
        assert first.lease_id == lease_id
        # Back in the queue, it waits for the slot the other holder has.
        events = await wait_for(
            js,
            reply.id,
            lambda evs: any(
                isinstance(e, ModelWaiting) and e.reason == WAITING_FOR_DEVICES for e in evs
            ),
            timeout=30,
        )
        assert (await trainer.get("/jobs")).json() == []
        assert sum(isinstance(e, TrainingStarted) for e in events) == 1

        await release(nc, blocker.lease_id, holder="other", node="n1")
        events = await wait_for(js, reply.id, status_is(JobStatus.DONE), timeout=150)
        first, second = [e for e in events if isinstance(e, TrainingStarted)]
        assert second.attempt == 2 and second.lease_id not in ("", lease_id)
        assert 1.0 <= second.resume_epoch < 100.0  # the point written at the refusal
        assert not any(isinstance(e, TrainingFailed) for e in events)
        log = await stored_log(js, reply.id)
        assert "training handed back: Device lease lost" in log
        assert f"resuming from the resume point at epoch {second.resume_epoch:g}" in log

    metrics = EventStore(js, subjects.STREAM_METRICS, codec.metric_events)
    series, _ = await metrics.load(subjects.model_metrics(reply.id))
    for phase in ("train", "val"):
        its = [p.iteration for p in series if isinstance(p, MetricsRecorded) and p.phase == phase]
        assert its and its == sorted(set(its)), phase


@pytest.mark.parametrize(
    ("code", "lost"), [(404, True), (409, True), (403, True), (429, False), (503, False)]
)
def test_only_a_refusal_no_retry_fixes_loses_the_lease(code: int, lost: bool) -> None:
    """Gone or another holder's (4xx): lost. Busy or failing broker (429, 5xx): renew again."""
    assert lost_for_good(Rejected(code=code, message="m")) is lost
