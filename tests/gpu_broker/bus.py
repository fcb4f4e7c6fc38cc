"""Send lease commands and read a node's events, as the trainer and gateway would."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import msgspec
from nats.aio.client import Client

from digits_proto import codec, subjects
from digits_proto.gpus import AcquireLease, LeaseAccepted, ReleaseLease, RenewLease
from digits_proto.replies import Accepted, Rejected
from digits_proto.runtime import EventStore, request


async def acquire(
    nc: Client,
    job_id: str,
    holder: str = "h",
    count: int = 1,
    indexes: list[int] | None = None,
    priority: int = 0,
    user: str = "",
    node: str = "",
) -> LeaseAccepted | Rejected:
    """Send AcquireLease (to one node's broker when `node` is given); the reply or the refusal."""
    cmd = AcquireLease(
        job_id=job_id,
        holder=holder,
        count=count,
        device_indexes=indexes or [],
        priority=priority,
        user=user,
    )
    subject = subjects.gpus_node_command(node, "acquire") if node else subjects.CMD_GPUS_ACQUIRE
    return await _send(nc, subject, cmd)


async def renew(nc: Client, lease_id: str, holder: str = "h") -> LeaseAccepted | Rejected:
    """Send RenewLease."""
    return await _send(nc, subjects.CMD_GPUS_RENEW, RenewLease(lease_id=lease_id, holder=holder))


async def release(
    nc: Client, lease_id: str, holder: str = "h", node: str = ""
) -> Accepted | Rejected:
    """Send ReleaseLease (to one node's broker when `node` is given, as its trainer does)."""
    subject = subjects.gpus_node_command(node, "release") if node else subjects.CMD_GPUS_RELEASE
    return await _send(nc, subject, ReleaseLease(lease_id=lease_id, holder=holder))


async def _send(nc: Client, subject: str, cmd: msgspec.Struct) -> Any:
    body, rejected = await request(nc, subject, cmd)
    return rejected if rejected is not None else codec.lease_reply.decode(body)


async def node_events(js, node_id: str = "n1") -> list[Any]:
    """Every event on one node's subject, oldest first."""
    events, _ = await EventStore(js, subjects.STREAM_GPUS, codec.gpu_events).load(
        subjects.gpu_events(node_id)
    )
    return events


async def last_queue(js) -> list[Any]:
    """The entries of the last QueueChanged ([] when none was published)."""
    events, _ = await EventStore(js, subjects.STREAM_GPUS, codec.gpu_events).load(
        subjects.GPU_QUEUE_EVENTS
    )
    return list(events[-1].entries) if events else []


async def until(check, timeout: float = 6.0):
    """Poll an async `check` until it returns something truthy (its value); fail at `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := await check():
            return found
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached")
