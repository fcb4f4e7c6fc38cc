"""Tickets for long work: a durable pull consumer, explicit ack, heartbeats while working."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig
from nats.js.errors import FetchTimeoutError

from digits_proto.runtime._metrics import Metrics, metrics_for
from digits_proto.runtime._trace import handling

log = structlog.get_logger(__name__)


class Outcome(enum.Enum):
    """What to do with a ticket once its handler returns."""

    ACK = "ack"  # done (or nothing left to do)
    RETRY = "retry"  # not now: redeliver after a delay (e.g. waiting for a dataset or devices)
    TERM = "term"  # never: drop it


@dataclass(frozen=True)
class Later:
    """RETRY after `seconds` rather than the loop's `retry_delay` (a job far back in a queue
    asks again seldom, one next in line soon)."""

    seconds: float


async def consume_tickets(
    js: JetStreamContext,
    stream: str,
    subject: str,
    durable: str,
    handle: Callable[[Msg], Awaitable[Outcome | Later]],
    stop: asyncio.Event,
    ack_wait: float = 30.0,
    max_deliver: int = -1,
    retry_delay: float = 2.0,
    ready: asyncio.Event | None = None,
) -> None:
    """Run `handle` for each ticket, one at a time, until `stop` is set.

    The handler keeps its ticket alive with `heartbeat(msg)`; if the process dies, the ticket is
    redelivered after `ack_wait` to another worker, which resumes from the last checkpoint event.
    """
    config = ConsumerConfig(
        durable_name=durable,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=ack_wait,
        max_deliver=max_deliver,
        filter_subject=subject,
        max_ack_pending=1000,
    )
    sub = await js.pull_subscribe(subject, durable=durable, stream=stream, config=config)
    metrics = metrics_for(js._nc)  # the service's registry (ServiceHost binds it), if any
    if ready is not None:
        ready.set()
    try:
        while not stop.is_set():
            try:
                msgs = await sub.fetch(1, timeout=1.0)
            except (FetchTimeoutError, TimeoutError):
                continue
            except Exception as e:  # noqa: BLE001 - NATS reconnecting: keep the loop alive
                log.warning("ticket_fetch_failed", error=str(e))
                await asyncio.sleep(1.0)
                continue
            for msg in msgs:
                start = time.perf_counter()
                # The ticket's chain: what the work appends or sends, and its log lines, carry it.
                with handling(msg.headers):
                    try:
                        outcome = await handle(msg)
                    except Exception:
                        log.exception("ticket_failed", subject=msg.subject)
                        outcome = Outcome.RETRY
                if metrics is not None:
                    _record(metrics, durable, msg, outcome, time.perf_counter() - start)
                with contextlib.suppress(Exception):
                    if isinstance(outcome, Later):
                        await msg.nak(delay=max(0.0, outcome.seconds))
                    elif outcome is Outcome.ACK:
                        await msg.ack()
                    elif outcome is Outcome.RETRY:
                        await msg.nak(delay=retry_delay)
                    else:
                        await msg.term()
    finally:
        # A pull subscription left open keeps a fetch status message that makes drain() wait
        # out its whole timeout at shutdown.
        with contextlib.suppress(Exception):
            await sub.unsubscribe()


def _record(metrics: Metrics, durable: str, msg: Msg, outcome: Outcome | Later, took: float):
    label = "later" if isinstance(outcome, Later) else outcome.value
    metrics.observe("ticket_seconds", took, consumer=durable, outcome=label)
    with contextlib.suppress(Exception):  # a message without JetStream metadata: not a ticket
        if msg.metadata.num_delivered > 1:
            metrics.inc("ticket_redeliveries", consumer=durable)


@contextlib.asynccontextmanager
async def heartbeat(msg: Msg, every: float = 5.0) -> AsyncIterator[None]:
    """Tell JetStream the ticket is still being worked on, every `every` seconds."""

    async def beat() -> None:
        while True:
            await asyncio.sleep(every)
            with contextlib.suppress(Exception):
                await msg.in_progress()

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
