"""A ticket handler may ask for its own redelivery delay (`Later`) instead of the loop's."""

from __future__ import annotations

import asyncio
import time

from nats.js.api import StreamConfig

from digits_proto.runtime import Later, Outcome, consume_tickets


async def test_a_ticket_answered_later_comes_back_after_its_own_delay(js) -> None:
    """Later(0.5) brings the ticket back after ≥ 0.5 s, although the loop's retry_delay is 60 s."""
    await js.add_stream(StreamConfig(name="LATER", subjects=["later.>"]))
    await js.publish("later.one", b"ticket")
    seen: list[float] = []
    stop = asyncio.Event()

    async def handle(msg) -> Outcome | Later:
        seen.append(time.monotonic())
        if len(seen) == 1:
            return Later(0.5)
        stop.set()
        return Outcome.ACK

    loop = asyncio.create_task(
        consume_tickets(js, "LATER", "later.>", "later-worker", handle, stop, retry_delay=60.0)
    )
    await asyncio.wait_for(stop.wait(), 20)
    await loop
    assert len(seen) == 2 and seen[1] - seen[0] >= 0.45
