"""A ticket worker process for tests/proto/test_work_takeover.py: `consume_tickets` on the TAKEOVER
stream, reporting on core subjects what it does, so the test can kill it for real.

    python -m tests.proto.ticket_worker NATS_URL NAME MODE ACK_WAIT MAX_DELIVER

MODE "hold": the handler reports `takeover.held` and works until killed (heartbeats keep its
ticket); "exit": it reports `takeover.entered` and the process dies at once (os._exit, a
poison ticket); "ack": it reports `takeover.acked` and the ticket is done. Past MAX_DELIVER
deliveries the ticket goes to GiveUp, which reports `takeover.gave_up`.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

import nats
from nats.aio.msg import Msg

from digits_proto.runtime import GiveUp, Outcome, consume_tickets


async def main(url: str, name: str, mode: str, ack_wait: float, max_deliver: int) -> None:
    nc = await nats.connect(url)
    js = nc.jetstream()

    async def report(subject: str, msg: Msg, **extra: object) -> None:
        body = {"worker": name, "pid": os.getpid(), "ticket": msg.data.decode(), **extra}
        body["delivered"] = msg.metadata.num_delivered
        await nc.publish(subject, json.dumps(body).encode())
        await nc.flush()

    async def handle(msg: Msg) -> Outcome:
        if mode == "hold":
            await report("takeover.held", msg)
            await asyncio.Event().wait()  # works until killed
        if mode == "exit":
            await report("takeover.entered", msg)
            os._exit(3)  # dies holding the ticket: no ack, no nak
        await report("takeover.acked", msg)
        return Outcome.ACK

    async def end(msg: Msg, losses: int) -> None:
        await report("takeover.gave_up", msg, losses=losses)

    ready = asyncio.Event()
    stop = asyncio.Event()
    loop = asyncio.create_task(
        consume_tickets(
            js,
            "TAKEOVER",
            "takeover.work.>",
            "takeover-worker",
            handle,
            stop,
            ack_wait=ack_wait,
            ready=ready,
            give_up=GiveUp(max_deliver, end),
        )
    )
    await ready.wait()
    await nc.publish("takeover.ready", name.encode())
    await nc.flush()
    await loop


if __name__ == "__main__":
    url, name, mode, ack_wait, max_deliver = sys.argv[1:6]
    asyncio.run(main(url, name, mode, float(ack_wait), int(max_deliver)))
