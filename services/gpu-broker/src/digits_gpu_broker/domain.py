"""Pure lease logic: which devices a request gets, what a KV snapshot says, thread shares."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence, Set

import msgspec

from digits_gpu_broker.errors import DevicesBusy, NotHolder, TooManyDevices, UnknownDevice
from digits_gpu_broker.nvml import GpuInfo
from digits_proto.gpus import Device, GpuEvent, LeaseExpired, LeaseGranted, LeaseReleased

# Deterministic event ids: a lease ends once. LeaseReleased and LeaseExpired share one id, so
# JetStream's Nats-Msg-Id dedupe keeps whichever came first when a sweep races a release.
_EVENT_NS = uuid.UUID("6f1c3a52-8c1e-4f0e-9d55-3b7a2d9e4c10")


class LeaseRecord(msgspec.Struct, frozen=True, kw_only=True):
    """The value stored under each leased device's KV key."""

    lease_id: str
    job_id: str
    holder: str
    node_id: str
    devices: list[str]
    user: str = ""  # the job's owner, for the per-user cap


class Holding(msgspec.Struct, frozen=True, kw_only=True):
    """A device key's current value; `record` is None when the value is unreadable (still busy)."""

    record: LeaseRecord | None
    revision: int


# device_id -> Holding, for the devices whose key exists right now (absent = free).
Snapshot = Mapping[str, Holding]


def gpu_devices(infos: Iterable[GpuInfo]) -> list[Device]:
    """The devices a GPU node offers, one per NVML index."""
    return [
        Device(
            device_id=f"gpu{g.index}",
            kind="gpu",
            index=g.index,
            name=g.name,
            uuid=g.uuid,
            memory_total=g.memory_total,
            compute_capability=g.compute_capability,
        )
        for g in infos
    ]


def cpu_devices(slots: int, cpu_count: int) -> list[Device]:
    """The CPU slots a node without GPUs offers; each carries its share of the cores."""
    share = threads_per_device(cpu_count, slots)
    return [
        Device(device_id=f"cpu{i}", kind="cpu", index=i, name=f"CPU slot {i}", cores=share)
        for i in range(max(1, slots))
    ]


def threads_per_device(cpu_count: int, device_count: int) -> int:
    """OMP threads one device's job gets: the cores divided among the node's devices."""
    return max(1, cpu_count // max(1, device_count))


def lease_threads(cpu_count: int, device_count: int, leased: int) -> int:
    """OMP threads for a lease of `leased` devices."""
    return threads_per_device(cpu_count, device_count) * max(1, leased)


def cpu_fallback(
    devices: Sequence[Device], count: int, indexes: Sequence[int]
) -> tuple[int, list[int]]:
    """On a node with no GPU, a GPU request runs on CPU slots (DIGITS: no GPUs ⇒ CPU).

    GPU indexes mean nothing there, and a count beyond the slots is clamped instead of refused.
    """
    if devices and all(d.kind == "cpu" for d in devices):
        return max(1, min(count, len(devices))), []
    return count, list(indexes)


def validate_request(devices: Sequence[Device], count: int, indexes: Sequence[int]) -> None:
    """Refuse what can never be granted on this node (400 naming DIGITS's form field)."""
    known = {d.index for d in devices}
    if indexes:
        unknown = sorted(set(indexes) - known)
        if unknown:
            raise UnknownDevice(
                f"no device with index {unknown} on this node (has {sorted(known)})"
            )
        if len(set(indexes)) != len(indexes):
            raise UnknownDevice("a device index is listed twice")
        return
    if count < 1:
        raise TooManyDevices("ask for at least one device")
    if count > len(devices):
        raise TooManyDevices(f"{count} devices asked for, this node has {len(devices)}")


def choose_devices(
    devices: Sequence[Device], busy: Set[str], count: int, indexes: Sequence[int]
) -> list[Device]:
    """All or nothing: exactly `indexes`, else the `count` lowest free devices; else DevicesBusy."""
    validate_request(devices, count, indexes)
    if indexes:
        by_index = {d.index: d for d in devices}
        wanted = [by_index[i] for i in indexes]
        if any(d.device_id in busy for d in wanted):
            raise DevicesBusy()
        return wanted
    free = sorted((d for d in devices if d.device_id not in busy), key=lambda d: d.index)
    if len(free) < count:
        raise DevicesBusy()
    return free[:count]


def leases_in(snapshot: Snapshot) -> dict[str, LeaseRecord]:
    """Every lease seen in a snapshot (complete or not), by id."""
    return {h.record.lease_id: h.record for h in snapshot.values() if h.record is not None}


def lease_keys(snapshot: Snapshot, lease_id: str) -> dict[str, int]:
    """device_id -> revision of the keys that hold `lease_id` right now."""
    return {
        dev: h.revision
        for dev, h in snapshot.items()
        if h.record is not None and h.record.lease_id == lease_id
    }


def is_complete(snapshot: Snapshot, record: LeaseRecord) -> bool:
    """Every device of the lease is still held by it (none expired or released)."""
    return set(lease_keys(snapshot, record.lease_id)) == set(record.devices)


def complete_leases(snapshot: Snapshot) -> dict[str, LeaseRecord]:
    """The leases whose every device key is present."""
    return {i: r for i, r in leases_in(snapshot).items() if is_complete(snapshot, r)}


def find_job_lease(snapshot: Snapshot, job_id: str, holder: str) -> LeaseRecord | None:
    """The complete lease a job already holds here (a retried acquire gets it back)."""
    for record in complete_leases(snapshot).values():
        if record.job_id == job_id and record.holder == holder:
            return record
    return None


def check_holder(record: LeaseRecord, holder: str) -> None:
    """Only the holder may renew or release a lease."""
    if record.holder != holder:
        raise NotHolder(record.lease_id)


def expired(tracked: Mapping[str, LeaseRecord], snapshot: Snapshot) -> list[LeaseRecord]:
    """Tracked leases that lost a device key since they were seen complete."""
    live = complete_leases(snapshot)
    return [r for lease_id, r in tracked.items() if lease_id not in live]


def open_leases(history: Iterable[GpuEvent], node_id: str) -> dict[str, LeaseRecord]:
    """Fold a node's events: leases granted and not yet released or expired (holder unknown)."""
    leases: dict[str, LeaseRecord] = {}
    for event in history:
        match event:
            case LeaseGranted(lease_id=lease_id, job_id=job_id, device_ids=ids):
                leases[lease_id] = LeaseRecord(
                    lease_id=lease_id, job_id=job_id, holder="", node_id=node_id, devices=ids
                )
            case LeaseReleased(lease_id=lease_id) | LeaseExpired(lease_id=lease_id):
                leases.pop(lease_id, None)
            case _:
                pass
    return leases


def granted_event_id(lease_id: str) -> str:
    """The one id a lease's LeaseGranted ever has."""
    return uuid.uuid5(_EVENT_NS, f"{lease_id}:granted").hex


def end_event_id(lease_id: str) -> str:
    """The one id a lease's end (LeaseReleased or LeaseExpired) ever has."""
    return uuid.uuid5(_EVENT_NS, f"{lease_id}:end").hex
