"""Make the device queue visible (QueueChanged events) and drop jobs that stop waiting.

A change only marks the queue dirty (`changed`); one loop publishes it at most once per
interval (`publish_forever`): hundreds of jobs joining at once make a few snapshots, not one
per join (each snapshot lists every waiting job, and the gateway projects each one).
"""

from __future__ import annotations

import asyncio
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
from digits_proto import codec, subjects, versions
from digits_proto.gpus import QueueChanged
from digits_proto.models import ModelAborted, ModelDeleted

if TYPE_CHECKING:
    from digits_gpu_broker.broker import Broker

log = structlog.get_logger(__name__)

_queue_event = msgspec.json.Decoder(QueueChanged)


async def running(broker: Broker) -> dict[str, int]:
    """Jobs holding devices per user, on every node (only read when a cap is set)."""
    if broker.user_cap <= 0:
        return {}
    return order.running_by_user(await all_leases(broker.book.kv))


def changed(broker: Broker) -> None:
    """The queue may have changed: `publish_forever` publishes it soon."""
    broker.queue_dirty.set()


async def publish_forever(broker: Broker, interval: float, stop: asyncio.Event) -> None:
    """Publish the queue whenever it was marked changed, at most once per `interval`."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(broker.queue_dirty.wait(), 1.0)
        if not broker.queue_dirty.is_set():
            continue
        broker.queue_dirty.clear()
        try:
            await publish(broker)
        except Exception:  # e.g. NATS restarting: publish on the next change or sweep
            log.exception("queue_publish_failed", node_id=broker.node_id)
            broker.queue_dirty.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)


async def publish(broker: Broker) -> bool:
    """Append the queue as it stands, unless the last QueueChanged already says the same.

    The entries are first compared with what this broker last saw published (no request);
    only a difference reads the stream's last snapshot (another node's broker may have
    published the same already).
    """
    async with broker.publishing:
        entries = order.describe(broker.waitlist.entries(), await running(broker), broker.user_cap)
        if broker.published is not None and broker.published == entries:
            return False
        last = await _last(broker)
        broker.published = last.entries if last is not None else []
        if broker.published == entries:
            return False  # unchanged (or still empty before any publication)
        event = QueueChanged(node_id=broker.node_id, entries=entries)
        await broker.events.append(subjects.GPU_QUEUE_EVENTS, [event], None)
        broker.published = entries
        broker.metrics.set("queue_length", float(len(entries)))
        return True


async def _last(broker: Broker) -> QueueChanged | None:
    try:
        msg = await broker.events.js.get_last_msg(subjects.STREAM_GPUS, subjects.GPU_QUEUE_EVENTS)
    except NotFoundError:
        return None
    try:
        return versions.decode_event(_queue_event, msg.data or b"", msg.headers)
    except msgspec.DecodeError:
        return None


async def watch_jobs(nc: Client, broker: Broker) -> Subscription:
    """A job aborted or deleted while it waits leaves the queue at once (not after the TTL)."""

    async def on_event(msg: Msg) -> None:
        try:
            event = versions.decode_event(codec.model_events, msg.data, msg.headers)
        except msgspec.DecodeError:
            return
        if not isinstance(event, ModelAborted | ModelDeleted):
            return
        broker.job_ended(event.model_id)
        with contextlib.suppress(Exception):  # the TTL still removes it
            await broker.waitlist.withdraw(event.model_id)
            changed(broker)
            log.info("queue_withdrawn", job_id=event.model_id)

    return await nc.subscribe(subjects.MODEL_EVENTS, cb=on_event)
