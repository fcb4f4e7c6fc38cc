"""Make the device queue visible (QueueChanged events) and drop jobs that stop waiting."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import msgspec
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.errors import NotFoundError

from digits_gpu_broker import order
from digits_gpu_broker.leases import all_leases
from digits_proto import codec, subjects
from digits_proto.gpus import QueueChanged
from digits_proto.models import ModelAborted, ModelDeleted

if TYPE_CHECKING:
    from digits_gpu_broker.handlers import Broker

log = structlog.get_logger(__name__)

_queue_event = msgspec.json.Decoder(QueueChanged)


async def running(broker: Broker) -> dict[str, int]:
    """Jobs holding devices per user, on every node (only read when a cap is set)."""
    if broker.user_cap <= 0:
        return {}
    return order.running_by_user(await all_leases(broker.book.kv))


async def publish(broker: Broker) -> bool:
    """Append the queue as it stands, unless the last QueueChanged already says the same."""
    async with broker.publishing:
        entries = order.describe(broker.waitlist.entries(), await running(broker), broker.user_cap)
        last = await _last(broker)
        if (last.entries if last is not None else []) == entries:
            return False  # unchanged (or still empty before any publication)
        event = QueueChanged(node_id=broker.node_id, entries=entries)
        await broker.events.append(subjects.GPU_QUEUE_EVENTS, [event], None)
        broker.metrics.set("queue_length", float(len(entries)))
        return True


async def _last(broker: Broker) -> QueueChanged | None:
    try:
        msg = await broker.events.js.get_last_msg(subjects.STREAM_GPUS, subjects.GPU_QUEUE_EVENTS)
    except NotFoundError:
        return None
    try:
        return _queue_event.decode(msg.data or b"")
    except msgspec.DecodeError:
        return None


async def watch_jobs(nc: Client, broker: Broker) -> Subscription:
    """A job aborted or deleted while it waits leaves the queue at once (not after the TTL)."""

    async def on_event(msg: Msg) -> None:
        try:
            event = codec.model_events.decode(msg.data)
        except msgspec.DecodeError:
            return
        if not isinstance(event, ModelAborted | ModelDeleted):
            return
        with contextlib.suppress(Exception):  # the TTL still removes it
            await broker.waitlist.withdraw(event.model_id)
            await publish(broker)
            log.info("queue_withdrawn", job_id=event.model_id)

    return await nc.subscribe(subjects.MODEL_EVENTS, cb=on_event)
