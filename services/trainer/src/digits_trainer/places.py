"""Where each waiting job stands in the device queue, from the gpu-brokers' QueueChanged events.

A job far back in the queue then asks for devices seldom and one next in line soon (see
`retry_for`), instead of every waiting job asking every few seconds.
"""

from __future__ import annotations

import msgspec
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from digits_proto import subjects, versions
from digits_proto.gpus import QueueChanged
from digits_proto.runtime import Later
from digits_trainer.settings import Settings

_queue = msgspec.json.Decoder(QueueChanged)


class QueuePlaces:
    """The last published queue: job id → 1-based place."""

    def __init__(self) -> None:
        self.places: dict[str, int] = {}

    async def follow(self, nc: Client) -> Subscription:
        """Keep `places` current from every QueueChanged the brokers publish."""
        return await nc.subscribe(subjects.GPU_QUEUE_EVENTS, cb=self.on_queue)

    async def on_queue(self, msg: Msg) -> None:
        """Replace the places with those of one QueueChanged (the queue is one, shared)."""
        try:
            event = versions.decode_event(_queue, msg.data, msg.headers)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return
        self.places = {e.job_id: e.position for e in event.entries}

    def waiting(self) -> bool:
        """Whether the last published queue holds any job."""
        return bool(self.places)

    def place(self, job_id: str) -> int | None:
        """The job's place, None while no publication has listed it."""
        return self.places.get(job_id)


def retry_for(settings: Settings, place: int | None) -> Later:
    """When a job that waits for devices asks again: soon near the head of the queue, seldom
    further back, `retry_delay` while its place is not known yet.

    Jobs move up about one place per job that ends: one `near` places back asks again before
    it can reach the head, one `far` back is still behind the near ones when it asks.
    """
    if place is None:
        return Later(settings.retry_delay)
    head = max(1, settings.concurrent_jobs)
    if place <= head:
        return Later(settings.next_retry_delay)
    if place <= 4 * head:
        return Later(settings.near_retry_delay)
    return Later(settings.far_retry_delay)
