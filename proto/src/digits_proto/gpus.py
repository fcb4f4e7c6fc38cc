"""GPU broker context: devices, leases and telemetry."""

from __future__ import annotations

import msgspec

from digits_proto.base import Command, Event, Reply


class Device(msgspec.Struct, frozen=True, kw_only=True):
    """A device a node offers: a GPU (NVML) or, with none, a CPU slot."""

    device_id: str
    kind: str
    index: int
    name: str = ""
    uuid: str = ""
    memory_total: int = 0
    compute_capability: str = ""
    cores: int = 0


class AcquireLease(Command, frozen=True, kw_only=True, tag="gpus.AcquireLease"):
    """Ask for `count` devices, or exactly `device_indexes`; all or nothing."""

    job_id: str
    holder: str
    count: int = 1
    device_indexes: list[int] = []
    # Queue order: higher priority first, then submission order (beyond DIGITS).
    priority: int = 0
    # The job's owner, for the per-user cap on concurrent jobs.
    user: str = ""
    # When the job was submitted (epoch seconds): FIFO order within a priority; 0 = when it
    # first asked.
    submitted: float = 0.0
    # False: take devices free now (after every queued job's share) or get 409 at once, never
    # joining the queue (inference: it falls back to the CPU rather than wait behind training).
    wait: bool = True


class RenewLease(Command, frozen=True, kw_only=True, tag="gpus.RenewLease"):
    """Heartbeat: keep a lease alive for another TTL."""

    lease_id: str
    holder: str


class ReleaseLease(Command, frozen=True, kw_only=True, tag="gpus.ReleaseLease"):
    """Give a lease's devices back."""

    lease_id: str
    holder: str


class LeaseAccepted(Reply, frozen=True, kw_only=True, tag="gpus.LeaseAccepted"):
    """Devices granted until `ttl_seconds` pass without a renewal."""

    lease_id: str
    node_id: str
    devices: list[Device]
    threads: int
    ttl_seconds: float


class GpuEvent(Event, frozen=True, kw_only=True):
    """Base of every device/lease event."""

    node_id: str


class DevicesDiscovered(GpuEvent, frozen=True, kw_only=True, tag="gpus.DevicesDiscovered"):
    """A broker started and offers these devices."""

    devices: list[Device]


class LeaseGranted(GpuEvent, frozen=True, kw_only=True, tag="gpus.LeaseGranted"):
    """Devices leased to a job."""

    lease_id: str
    job_id: str
    device_ids: list[str]


class LeaseReleased(GpuEvent, frozen=True, kw_only=True, tag="gpus.LeaseReleased"):
    """A holder gave its devices back."""

    lease_id: str
    job_id: str
    device_ids: list[str] = []


class LeaseExpired(GpuEvent, frozen=True, kw_only=True, tag="gpus.LeaseExpired"):
    """A holder stopped renewing; its devices are free again."""

    lease_id: str
    job_id: str
    device_ids: list[str] = []


class DeviceSample(msgspec.Struct, frozen=True, kw_only=True):
    """One device's state at one instant."""

    device_id: str
    memory_used: int = 0
    memory_total: int = 0
    utilization: float | None = None
    temperature: float | None = None
    power_watts: float | None = None
    processes: list[tuple[int, int]] = []


class TelemetrySampled(GpuEvent, frozen=True, kw_only=True, tag="gpus.TelemetrySampled"):
    """Per-device telemetry, about once a second, on a non-persisted subject."""

    samples: list[DeviceSample]
    # The node's own CPU (percent of all cores busy) and memory, beside its devices' figures
    # (optional: a broker from before these fields sends none).
    host_cpu: float | None = None
    host_memory_used: int = 0
    host_memory_total: int = 0


class QueueEntry(msgspec.Struct, frozen=True, kw_only=True):
    """A job waiting for devices; `position` is 1 for the next one served."""

    job_id: str
    holder: str = ""
    user: str = ""
    priority: int = 0
    count: int = 1
    device_indexes: list[int] = []
    node_id: str = ""  # the node whose broker it last asked
    since: int = 0  # the queue bucket's revision when it first asked (ties, or no `submitted`)
    submitted: float = 0.0  # when the job was submitted (epoch seconds)
    position: int = 0
    reason: str = ""  # why it waits now, e.g. "devices busy", "user cap"


class QueueChanged(GpuEvent, frozen=True, kw_only=True, tag="gpus.QueueChanged"):
    """The whole device queue as it stands now, in the order it will be served."""

    entries: list[QueueEntry] = []


GpuEvents = DevicesDiscovered | LeaseGranted | LeaseReleased | LeaseExpired | QueueChanged
GpuCommands = AcquireLease | RenewLease | ReleaseLease
