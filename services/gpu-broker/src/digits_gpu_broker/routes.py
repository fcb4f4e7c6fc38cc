"""The broker's HTTP routes: its devices (live telemetry, cordons), leases and the device queue.

Read-only JSON, plus two operations behind the operator token: cordon a device (never granted
again; the leases it holds run on) and uncordon it. A cordon is a key of the queue bucket, so
it survives a broker restart and every broker sees it.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta

import msgspec
from litestar import get, post
from nats.js.errors import NotFoundError

from digits_gpu_broker import domain, order, queueing
from digits_gpu_broker.broker import Broker
from digits_proto import subjects
from digits_proto.gpus import DeviceSample, QueueEntry
from digits_proto.runtime import OPS_SECURITY, NotFound, ops_guard


class DeviceView(msgspec.Struct, frozen=True, kw_only=True):
    """One device of this node as it stands now."""

    device_id: str
    kind: str
    index: int
    name: str
    uuid: str
    memory_total: int
    cores: int
    cordoned: bool
    lease_id: str | None
    job_id: str | None
    telemetry: DeviceSample | None


class LeaseView(msgspec.Struct, frozen=True, kw_only=True):
    """A live lease on this node: who holds which devices, until when unless renewed."""

    lease_id: str
    job_id: str
    holder: str
    user: str
    devices: list[str]
    renewed_at: datetime | None
    expires_at: datetime | None


class Console:
    """What the routes read beyond the broker: the newest telemetry sample of each device."""

    def __init__(self, broker: Broker):
        self.broker = broker
        self.samples: dict[str, DeviceSample] = {}

    def watch(self) -> None:
        """Gauges read at each scrape of /metrics: cordoned devices, open leases."""
        b = self.broker

        def update() -> None:
            b.metrics.set("devices_cordoned", float(len(b.waitlist.cordoned(b.node_id))))
            b.metrics.set("leases_open", float(len(b.tracked)))

        b.metrics.describe("leases_open", "Open leases on this node")
        b.metrics.on_render(update)

    def on_telemetry(self, samples: list[DeviceSample]) -> None:
        """Keep the newest sample of each device (telemetry's callback)."""
        self.samples.update((s.device_id, s) for s in samples)

    async def devices(self) -> list[DeviceView]:
        """Every device with its lease, cordon and newest telemetry."""
        b = self.broker
        snapshot = await b.book.snapshot()
        cordoned = b.waitlist.cordoned(b.node_id)
        out = []
        for d in b.devices:
            held = snapshot.get(d.device_id)
            record = held.record if held is not None else None
            out.append(
                DeviceView(
                    device_id=d.device_id,
                    kind=d.kind,
                    index=d.index,
                    name=d.name,
                    uuid=d.uuid,
                    memory_total=d.memory_total,
                    cores=d.cores,
                    cordoned=d.device_id in cordoned,
                    lease_id=record.lease_id if record else None,
                    job_id=record.job_id if record else None,
                    telemetry=self.samples.get(d.device_id),
                )
            )
        return out

    async def leases(self) -> list[LeaseView]:
        """Every lease on this node; its expiry is the last write of its keys plus the TTL."""
        b = self.broker
        snapshot = await b.book.snapshot()
        out = []
        for lease_id, record in sorted(domain.leases_in(snapshot).items()):
            renewed = await self._written(b.book.key(record.devices[0])) if record.devices else None
            out.append(
                LeaseView(
                    lease_id=lease_id,
                    job_id=record.job_id,
                    holder=record.holder,
                    user=record.user,
                    devices=list(record.devices),
                    renewed_at=renewed,
                    expires_at=renewed + timedelta(seconds=b.book.ttl) if renewed else None,
                )
            )
        return out

    async def _written(self, key: str) -> datetime | None:
        """When a lease key was last written (its message's stream timestamp)."""
        kv = self.broker.book.kv  # the stream get nats-py's KV.get does, keeping the time
        stream, subject = f"KV_{subjects.KV_LEASES}", f"$KV.{subjects.KV_LEASES}.{key}"
        with contextlib.suppress(NotFoundError, TimeoutError):
            msg = await kv._js.get_msg(stream, subject=subject, direct=kv._direct)  # pyright: ignore
            return msg.time
        return None

    async def queue(self) -> list[QueueEntry]:
        """The shared queue in serving order, with what each job waits for."""
        b = self.broker
        return order.describe(b.waitlist.entries(), await queueing.running(b), b.user_cap)

    async def set_cordon(self, device_id: str, cordoned: bool) -> DeviceView:
        """Cordon or uncordon one of this node's devices; 404 for a device it does not have."""
        b = self.broker
        if device_id not in {d.device_id for d in b.devices}:
            raise NotFound(f"no device {device_id!r} on node {b.node_id}", field="device_id")
        if cordoned:
            await b.waitlist.cordon(b.node_id, device_id)
        else:
            await b.waitlist.uncordon(b.node_id, device_id)
            queueing.changed(b)  # a job waiting for it may go now
        return next(v for v in await self.devices() if v.device_id == device_id)


@get("/devices", tags=["gpu-broker"])
async def list_devices(console: Console) -> list[DeviceView]:
    """This node's devices: kind, memory, cordon, lease and the newest telemetry sample."""
    return await console.devices()


@get("/leases", tags=["gpu-broker"])
async def list_leases(console: Console) -> list[LeaseView]:
    """Live leases on this node: holder, job, devices, last renewal and expiry."""
    return await console.leases()


@get("/queue", tags=["gpu-broker"])
async def list_queue(console: Console) -> list[QueueEntry]:
    """Jobs waiting for devices (every node's), in serving order, with the reason each waits."""
    return await console.queue()


def _device_operation(verb: str) -> post:
    """POST /devices/{device_id}/<verb>, behind the operator token, answering the device."""
    return post(
        f"/devices/{{device_id:str}}/{verb}",
        tags=["gpu-broker"],
        guards=[ops_guard],
        security=OPS_SECURITY,
        status_code=200,
    )


@_device_operation("cordon")
async def cordon(console: Console, device_id: str) -> DeviceView:
    """Never grant this device again until uncordoned; leases it holds run on."""
    return await console.set_cordon(device_id, True)


@_device_operation("uncordon")
async def uncordon(console: Console, device_id: str) -> DeviceView:
    """Grant this device again."""
    return await console.set_cordon(device_id, False)


ROUTES = (list_devices, list_leases, list_queue, cordon, uncordon)
