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


@dataclass(frozen=True)
class GiveUp:
    """Bound a ticket whose worker never comes back from it (a poison ticket).

    Delivered more than `after` times, the ticket is not handled again: `end(msg, losses)` ends
    its job Error naming the cause, then the ticket is TERMed. Only for consumers whose handler
    never NAKs to wait (dataset builds, classify-many): JetStream counts a NAK as a delivery, so
    a job waiting in a queue would reach any bound. A consumer that waits that way (the trainer:
    `Later` while it waits for devices or its dataset) counts lost workers in its aggregate.
    """

    after: int  # deliveries allowed; 0 or less = no bound
    end: Callable[[Msg, int], Awaitable[None]]


async def consume_tickets(
    js: JetStreamContext,
    stream: str,
    subject: str,
    durable: str,
    handle: Callable[[Msg], Awaitable[Outcome | Later]],
    stop: asyncio.Event,
    ack_wait: float = 5.0,
    retry_delay: float = 2.0,
    ready: asyncio.Event | None = None,
    give_up: GiveUp | None = None,
) -> None:
    """Run `handle` for each ticket, one at a time, until `stop` is set.

    While the handler runs, the ticket is kept alive by `in_progress()` heartbeats every third of
    `ack_wait` (no handler can forget them); if the process dies, the heartbeats stop and the
    ticket is redelivered after `ack_wait` to another worker, which resumes from the last
    checkpoint event. A short `ack_wait` (5 s) makes that takeover quick.
    """
    await ensure_consumer(js, stream, subject, durable, ack_wait)
    sub = await js.pull_subscribe(subject, durable=durable, stream=stream)
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
                    outcome = await _handle(msg, handle, ack_wait, give_up)
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


async def _handle(
    msg: Msg,
    handle: Callable[[Msg], Awaitable[Outcome | Later]],
    ack_wait: float,
    give_up: GiveUp | None,
) -> Outcome | Later:
    """The handler's outcome, heartbeating meanwhile; a bounded ticket past its bound ends."""
    try:
        async with heartbeat(msg, every=max(0.2, ack_wait / 3)):
            delivered = _delivered(msg)
            if give_up is not None and 0 < give_up.after < delivered:
                log.error("ticket_given_up", subject=msg.subject, delivered=delivered)
                await give_up.end(msg, delivered - 1)
                return Outcome.TERM
            return await handle(msg)
    except Exception:
        log.exception("ticket_failed", subject=msg.subject)
        return Outcome.RETRY


def _delivered(msg: Msg) -> int:
    """How many times JetStream delivered this ticket (1 the first time)."""
    try:
        return int(msg.metadata.num_delivered or 1)
    except Exception:  # noqa: BLE001 - a message without JetStream metadata: a first delivery
        return 1


async def ensure_consumer(
    js: JetStreamContext, stream: str, subject: str, durable: str, ack_wait: float
) -> None:
    """Create the durable consumer, or update one that exists in place.

    `pull_subscribe` binds to an existing durable as it is: one created by an older release
    (ack_wait 30 s, or a JetStream max_deliver) would keep its config. The server's
    create-or-update request changes the editable fields and keeps the consumer's position.
    JetStream's own max_deliver stays unlimited: at its bound JetStream drops the ticket
    silently (the job would show Running forever), and it counts NAK-waits; see GiveUp.
    """
    config = ConsumerConfig(
        name=durable,
        durable_name=durable,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=ack_wait,
        max_deliver=-1,
        filter_subject=subject,
        max_ack_pending=1000,
    )
    try:
        await js.add_consumer(stream, config=config)
    except Exception as e:
        log.error("ticket_consumer_unchanged", stream=stream, consumer=durable, error=str(e))
        raise


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
