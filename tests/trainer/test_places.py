"""How soon a job waiting for devices asks again: from its place in the published queue."""

from __future__ import annotations

import asyncio
import time

from digits_proto import codec, subjects
from digits_proto.gpus import QueueChanged, QueueEntry
from digits_proto.runtime import Later
from digits_trainer.places import QueuePlaces, retry_for
from digits_trainer.settings import Settings


def entry(job_id: str, position: int) -> QueueEntry:
    return QueueEntry(job_id=job_id, holder="h", position=position, reason="waiting")


def test_a_job_near_the_head_asks_soon_one_far_back_seldom_an_unlisted_one_as_before() -> None:
    """Places up to `concurrent_jobs` retry after next_retry_delay, up to 4 × that after
    near_retry_delay, later ones after far_retry_delay, an unlisted job after retry_delay."""
    settings = Settings(
        concurrent_jobs=2,
        retry_delay=2.0,
        next_retry_delay=0.5,
        near_retry_delay=5.0,
        far_retry_delay=30.0,
    )
    assert retry_for(settings, 1) == Later(0.5)
    assert retry_for(settings, 2) == Later(0.5)
    assert retry_for(settings, 3) == Later(5.0)
    assert retry_for(settings, 8) == Later(5.0)
    assert retry_for(settings, 9) == Later(30.0)
    assert retry_for(settings, None) == Later(2.0)


async def test_places_follow_the_queue_the_brokers_publish(nc) -> None:
    """Each QueueChanged on the bus replaces the places (a job that left has none)."""
    places = QueuePlaces()
    await places.follow(nc)
    first = QueueChanged(node_id="n1", entries=[entry("a", 1), entry("b", 2)])
    await nc.publish(subjects.GPU_QUEUE_EVENTS, codec.encode(first))
    await until(lambda: places.place("b") == 2)
    await nc.publish(
        subjects.GPU_QUEUE_EVENTS, codec.encode(QueueChanged(node_id="n1", entries=[entry("b", 1)]))
    )
    await until(lambda: places.place("b") == 1)
    assert places.place("a") is None
    await nc.publish(subjects.GPU_QUEUE_EVENTS, b"not json")  # ignored, places kept
    await nc.flush()
    assert places.place("b") == 1


async def until(check, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.02)
