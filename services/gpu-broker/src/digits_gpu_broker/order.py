"""Pure queue rules: who is served next, whether a node could ever serve a request, caps."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence, Set

import msgspec

from digits_gpu_broker import domain
from digits_gpu_broker.errors import DevicesBusy, GpuBrokerError
from digits_proto.gpus import Device, QueueEntry


class Waiting(msgspec.Struct, frozen=True, kw_only=True):
    """A waiting acquire request as the queue bucket stores it (`job.<job_id>`)."""

    job_id: str
    holder: str
    user: str = ""
    priority: int = 0
    count: int = 1
    device_indexes: list[int] = []
    node_id: str = ""
    since: int = 0  # the bucket revision of its first ask: arrival order across nodes
    submitted: float = 0.0  # the job's submission time; 0 = unknown (then `since` decides)


def ordered(entries: Iterable[Waiting]) -> list[Waiting]:
    """Serving order: higher priority first, then submission order (FIFO within a priority).

    Jobs that say when they were submitted go by that (a job whose dataset was still building
    keeps its place); the others by when they first asked.
    """
    return sorted(
        entries,
        key=lambda w: (-w.priority, w.submitted or float("inf"), w.since or 1 << 62, w.job_id),
    )


def can_ever_run(devices: Sequence[Device], count: int, indexes: Sequence[int]) -> bool:
    """Whether a node with `devices` could grant the request if all of them were free."""
    count, indexes = domain.cpu_fallback(devices, count, indexes)
    try:
        domain.validate_request(devices, count, indexes)
    except GpuBrokerError:
        return False
    return True


def capped(user: str, running: Mapping[str, int], cap: int) -> bool:
    """A user already running `cap` jobs waits (0 = no cap; jobs without a user are never capped)."""
    return cap > 0 and bool(user) and running.get(user, 0) >= cap


def admit(
    queue: Iterable[Waiting],
    job_id: str,
    devices: Sequence[Device],
    busy: Set[str],
    running: Mapping[str, int],
    cap: int,
) -> tuple[list[Device] | None, str]:
    """The devices `job_id` gets now on this node, or None and why it waits.

    Walk the queue in serving order, setting free devices aside for every earlier job this node
    could serve. An earlier job that this node could serve but not now blocks the later ones, so
    a stream of small jobs cannot starve a large one (no backfill). Jobs this node can never serve
    and capped users are skipped: they wait for other nodes or for their own jobs to end.
    """
    taken = set(busy)
    ahead = ""  # the first earlier job that devices were set aside for
    for entry in ordered(queue):
        mine = entry.job_id == job_id
        if capped(entry.user, running, cap):
            if mine:
                return None, "user cap"
            continue
        count, indexes = domain.cpu_fallback(devices, entry.count, entry.device_indexes)
        if not can_ever_run(devices, count, indexes):
            if mine:
                return None, "not on this node"
            continue
        try:
            chosen = domain.choose_devices(devices, taken, count, indexes)
        except DevicesBusy:
            if not mine:
                return None, f"behind {entry.job_id}"
            return None, (f"behind {ahead}" if ahead else "devices busy")
        if mine:
            return chosen, ""
        taken.update(d.device_id for d in chosen)
        ahead = ahead or entry.job_id
    return None, "not queued"


def running_by_user(leases: Iterable[domain.LeaseRecord]) -> dict[str, int]:
    """How many jobs each user holds devices for (a job counts once, whatever its devices)."""
    jobs: dict[str, set[str]] = {}
    for record in leases:
        if record.user:
            jobs.setdefault(record.user, set()).add(record.job_id)
    return {user: len(ids) for user, ids in jobs.items()}


def describe(queue: Iterable[Waiting], running: Mapping[str, int], cap: int) -> list[QueueEntry]:
    """The queue as published: serving order, 1-based positions, what each one waits for."""
    out = []
    for position, w in enumerate(ordered(queue), start=1):
        if capped(w.user, running, cap):
            reason = f"user {w.user} runs {running.get(w.user, 0)} jobs (cap {cap})"
        elif w.device_indexes:
            reason = "waiting for device index " + ",".join(str(i) for i in w.device_indexes)
        else:
            reason = f"waiting for {w.count} device{'s' if w.count != 1 else ''}"
        out.append(
            QueueEntry(
                job_id=w.job_id,
                holder=w.holder,
                user=w.user,
                priority=w.priority,
                count=w.count,
                device_indexes=list(w.device_indexes),
                node_id=w.node_id,
                since=w.since,
                submitted=w.submitted,
                position=position,
                reason=reason,
            )
        )
    return out
