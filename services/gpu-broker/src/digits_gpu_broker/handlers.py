"""One function per lease command: read the KV, decide, claim/renew/release, append the event."""

from __future__ import annotations

import contextlib
import uuid

import structlog

from digits_gpu_broker import domain, order, queueing
from digits_gpu_broker.broker import Broker
from digits_gpu_broker.domain import LeaseRecord
from digits_gpu_broker.errors import DevicesBusy, GpuBrokerError, LeaseNotFound
from digits_gpu_broker.order import Waiting
from digits_proto import subjects
from digits_proto.gpus import (
    AcquireLease,
    LeaseAccepted,
    LeaseGranted,
    LeaseReleased,
    ReleaseLease,
    RenewLease,
)
from digits_proto.replies import Accepted

log = structlog.get_logger(__name__)

# A count request that loses a race re-reads the KV and tries the devices still free.
CLAIM_ATTEMPTS = 3


async def acquire_lease(broker: Broker, cmd: AcquireLease) -> LeaseAccepted:
    """Grant all the devices asked for, or none: 409 while the job waits its turn in the queue.

    Every ask (re)joins the shared queue; a job is granted only when no earlier job this node
    could serve is still waiting (priority first, then submission order). A retry gets its lease.
    """
    for name, value in (("job_id", cmd.job_id), ("holder", cmd.holder)):
        if not value:
            raise GpuBrokerError(f"{name} is required", field=name)
    count, indexes = domain.cpu_fallback(broker.devices, cmd.count, cmd.device_indexes)
    here = order.can_ever_run(broker.devices, count, indexes)
    if not here and not await _elsewhere(broker, cmd):
        domain.validate_request(broker.devices, count, indexes)  # raises the 400
    existing = domain.find_job_lease(await broker.book.snapshot(), cmd.job_id, cmd.holder)
    if existing is not None:
        return broker.accepted(existing)
    if not cmd.wait:
        return await _grant_now(broker, cmd, here)
    if cmd.job_id in broker.ended:
        raise DevicesBusy("the job was aborted or deleted")
    asked = await broker.waitlist.ask(
        Waiting(
            job_id=cmd.job_id,
            holder=cmd.holder,
            user=cmd.user,
            priority=cmd.priority,
            count=cmd.count,
            device_indexes=list(cmd.device_indexes),
            node_id=broker.node_id,
            submitted=cmd.submitted,
        )
    )
    if cmd.job_id in broker.ended:  # it ended while the ask was written
        await broker.waitlist.withdraw(cmd.job_id)
        raise DevicesBusy("the job was aborted or deleted")
    if not here:
        queueing.changed(broker)
        raise DevicesBusy("waiting: the devices are on another node")
    record = await _claim_in_turn(broker, cmd, asked)
    await broker.waitlist.withdraw(cmd.job_id)
    return await _record_grant(broker, record)


async def _grant_now(broker: Broker, cmd: AcquireLease, here: bool) -> LeaseAccepted:
    """A request that will not wait (inference): devices left after every queued job, or 409.

    It never joins the queue, so it can neither delay a training job nor be delayed by one,
    and it gets GPUs only: a CPU slot gains such a caller nothing and, held even for a moment,
    would turn a trainer's request away.
    """
    if not here:
        raise DevicesBusy("devices busy")
    if not any(d.kind == "gpu" for d in broker.devices):
        raise DevicesBusy("no GPU on this node")
    asked = Waiting(
        job_id=cmd.job_id,
        holder=cmd.holder,
        user=cmd.user,
        priority=-(1 << 31),  # after every queued job: only what none of them can use now
        count=cmd.count,
        device_indexes=list(cmd.device_indexes),
        node_id=broker.node_id,
    )
    return await _record_grant(broker, await _claim_in_turn(broker, cmd, asked))


async def _record_grant(broker: Broker, record: LeaseRecord) -> LeaseAccepted:
    """Append LeaseGranted for a claimed lease (or give the devices back), then reply."""
    granted = LeaseGranted(
        event_id=domain.granted_event_id(record.lease_id),
        node_id=broker.node_id,
        lease_id=record.lease_id,
        job_id=record.job_id,
        device_ids=record.devices,
    )
    try:
        await broker.events.append(broker.subject, [granted], None)
    except Exception:
        # No event, no lease: give the devices back rather than hold them unrecorded.
        with contextlib.suppress(Exception):
            await broker.book.release(
                domain.lease_keys(await broker.book.snapshot(), record.lease_id)
            )
        raise
    broker.tracked[record.lease_id] = record
    broker.metrics.inc("leases_granted")
    log.info(
        "lease_granted", lease_id=record.lease_id, job_id=record.job_id, devices=record.devices
    )
    queueing.changed(broker)
    return broker.accepted(record)


async def _claim_in_turn(broker: Broker, cmd: AcquireLease, asked: Waiting) -> LeaseRecord:
    """Claim the devices the queue gives this job now; DevicesBusy while it must wait."""
    # A job that would wait even with every device free (the jobs before it take them all)
    # waits without a read of the leases: most of a long queue is answered here.
    others = [w for w in broker.waitlist.entries() if w.job_id != cmd.job_id]
    running = await queueing.running(broker)
    chosen, reason = order.admit(
        [*others, asked], cmd.job_id, broker.devices, set(), running, broker.user_cap
    )
    if chosen is None and reason.startswith("behind "):
        broker.metrics.inc("acquire_busy")
        raise DevicesBusy(f"waiting: {reason}")
    for _ in range(CLAIM_ATTEMPTS):
        snapshot = await broker.book.snapshot()
        existing = domain.find_job_lease(snapshot, cmd.job_id, cmd.holder)
        if existing is not None:
            return existing
        # A job holding devices waits no more, even while the shared queue still lists it (its
        # withdraw races this read): counted again it would be given a second set of devices,
        # and the job behind it none.
        leased = {r.job_id for r in domain.leases_in(snapshot).values()}
        queue = [
            w
            for w in broker.waitlist.entries()
            if w.job_id != cmd.job_id and w.job_id not in leased
        ]
        # A cordoned device is never granted (the leases it holds run on).
        busy = set(snapshot) | broker.waitlist.cordoned(broker.node_id)
        chosen, reason = order.admit(
            [*queue, asked], cmd.job_id, broker.devices, busy, running, broker.user_cap
        )
        if chosen is None:
            broker.metrics.inc("acquire_busy")
            queueing.changed(broker)
            raise DevicesBusy("devices busy" if reason == "devices busy" else f"waiting: {reason}")
        record = LeaseRecord(
            lease_id=uuid.uuid4().hex,
            job_id=cmd.job_id,
            holder=cmd.holder,
            node_id=broker.node_id,
            devices=[d.device_id for d in chosen],
            user=cmd.user,
        )
        if await broker.book.claim(record):
            return record
        broker.metrics.inc("claims_lost")
    broker.metrics.inc("acquire_busy")
    raise DevicesBusy()


async def _elsewhere(broker: Broker, cmd: AcquireLease) -> bool:
    """Whether another live node could serve a request this node never can."""
    nodes = broker.waitlist.nodes()
    return any(
        order.can_ever_run(devices, cmd.count, cmd.device_indexes)
        for node_id, devices in nodes.items()
        if node_id != broker.node_id
    )


async def renew_lease(broker: Broker, cmd: RenewLease) -> LeaseAccepted:
    """Push the lease's expiry one TTL further (404 once gone, 409 for another holder)."""
    record, revisions = await _live(broker, cmd.lease_id, cmd.holder)
    if not await broker.book.renew(record, revisions):
        # A key changed under us: a concurrent renew by the holder is fine, an expiry is not.
        record, _ = await _live(broker, cmd.lease_id, cmd.holder)
    return broker.accepted(record)


async def release_lease(broker: Broker, cmd: ReleaseLease) -> Accepted:
    """Give the devices back (404 when the lease is already gone)."""
    record, revisions = await _live(broker, cmd.lease_id, cmd.holder)
    released = LeaseReleased(
        event_id=domain.end_event_id(record.lease_id),
        node_id=broker.node_id,
        lease_id=record.lease_id,
        job_id=record.job_id,
        device_ids=record.devices,
    )
    # The event goes first: a sweep that sees the keys vanish then dedupes its LeaseExpired.
    seq = await broker.events.append(broker.subject, [released], None)
    await broker.book.release(revisions)
    broker.tracked.pop(record.lease_id, None)
    queueing.changed(broker)  # with a per-user cap, what the others wait for changes
    broker.metrics.inc("leases_released")
    log.info("lease_released", lease_id=record.lease_id, job_id=record.job_id)
    return Accepted(id=record.lease_id, stream=subjects.STREAM_GPUS, seq=seq)


async def _live(broker: Broker, lease_id: str, holder: str) -> tuple[LeaseRecord, dict[str, int]]:
    """The lease as the KV holds it now, with its keys' revisions; refusals as domain errors."""
    snapshot = await broker.book.snapshot()
    record = domain.leases_in(snapshot).get(lease_id)
    if record is None:
        raise LeaseNotFound(lease_id)
    domain.check_holder(record, holder)
    revisions = domain.lease_keys(snapshot, lease_id)
    if not domain.is_complete(snapshot, record):
        # Part of it expired: the rest goes too (the sweep records LeaseExpired).
        await broker.book.release(revisions)
        raise LeaseNotFound(lease_id)
    return record, revisions
