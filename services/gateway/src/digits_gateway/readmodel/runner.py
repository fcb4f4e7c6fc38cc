"""The projection loop: fetch a batch → one DuckDB transaction (apply + tracking) → commit → ack."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import msgspec
import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import FetchTimeoutError, NotFoundError

from digits_gateway.readmodel import tracking
from digits_gateway.readmodel.db import ReadModel
from digits_gateway.readmodel.live import Hub, LiveEvent
from digits_gateway.readmodel.projectors import PROJECTORS
from digits_proto import subjects, versions
from digits_proto.runtime import Metrics

log = structlog.get_logger(__name__)

CONSUMERS = {stream: subjects.readmodel_consumer(stream) for stream in subjects.EVENT_STREAMS}
# Events per fetch (one transaction) as a multiple of the `fetch_batch` setting: a commit costs
# the same for 50 events as for 5,000, so the streams with many small events take big batches;
# the devices stream's QueueChanged events each hold the whole queue, so it keeps small ones.
BATCH_SCALE = {subjects.STREAM_METRICS: 16, subjects.STREAM_GPUS: 1}
DEFAULT_SCALE = 4
ACK_V1_TOKENS = (
    9  # $JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<ts>.<pending>
)


def stream_seq(msg: Msg) -> int:
    """The message's stream sequence, read straight from its ack subject: nats-py's
    `msg.metadata` also parses a timestamp into a datetime, which cost ~40 µs a message."""
    tokens = (msg.reply or "").split(".")
    if len(tokens) == ACK_V1_TOKENS and tokens[0] == "$JS":
        return int(tokens[5])
    return msg.metadata.sequence.stream  # the v2 form (with a domain): let nats-py read it


class Projection:
    """Keeps the read model in step with every event stream and tells waiters how far it is."""

    def __init__(
        self, db: ReadModel, js: JetStreamContext, hub: Hub, metrics: Metrics, batch: int = 500
    ):
        self.db = db
        self.js = js
        self.hub = hub
        self.metrics = metrics
        self.batch = batch
        self.positions: dict[str, int] = db.tracking(CONSUMERS)
        # Since start: events applied, and what the consumer still holds (rebuild progress).
        self.applied: dict[str, int] = dict.fromkeys(CONSUMERS, 0)
        self.pending: dict[str, int] = dict.fromkeys(CONSUMERS, 0)
        self.running = False
        self._caught_up = False
        self._changed = asyncio.Event()
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._subs: dict[str, JetStreamContext.PullSubscription] = {}

    async def start(self) -> None:
        """Create each stream's durable consumer at our own position, then run the loops.

        The consumer is always recreated at tracking + 1: the DuckDB file is the only record of
        what was applied, so a deleted (or older) file makes the views rebuild from there.
        """
        if self.db.fresh:
            log.info("readmodel_rebuild", path=str(self.db.path))
        for stream in subjects.EVENT_STREAMS:
            self._subs[stream] = await self._subscribe(stream)
            with contextlib.suppress(Exception):  # only for the progress report
                info = await self.js.consumer_info(stream, CONSUMERS[stream])
                self.pending[stream] = info.num_pending
        for stream in subjects.EVENT_STREAMS:
            self._tasks.append(asyncio.create_task(self._run(stream), name=f"project-{stream}"))
        self.running = True
        log.info("projection_started", positions=self.positions)

    async def caught_up(self) -> bool:
        """True once everything stored at start is applied (then latched): views are whole.

        Asks each consumer for what is still undelivered or unacked; stream heads cannot tell,
        since deleted messages (a deleted model's metrics) are never delivered.
        """
        if self._caught_up or not self.running:
            return self._caught_up
        try:
            for stream, durable in CONSUMERS.items():
                info = await self.js.consumer_info(stream, durable)
                if info.num_pending or info.num_ack_pending:
                    return False
        except Exception:  # noqa: BLE001 - NATS unreachable: not caught up yet, ask again later
            return False
        self._caught_up = True
        log.info("projection_caught_up", positions=self.positions)
        return True

    def progress(self) -> dict[str, dict[str, int]]:
        """Per stream still catching up: events applied since start and still pending."""
        return {
            stream: {"applied": self.applied[stream], "pending": pending}
            for stream, pending in self.pending.items()
            if pending
        }

    async def stop(self) -> None:
        """Stop the loops (unacked messages are simply redelivered next time)."""
        self.running = False
        self._stop.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        # Unsubscribed pull subscriptions would hold up the connection's drain.
        for sub in self._subs.values():
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def wait_for(self, stream: str, seq: int, timeout: float) -> bool:
        """True once the events of `stream` up to `seq` are committed (read-your-writes)."""
        if stream not in self.positions or seq <= 0:
            return True
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while self.positions[stream] < seq:
                    await self._changed.wait()
        return self.positions[stream] >= seq

    async def _subscribe(self, stream: str) -> JetStreamContext.PullSubscription:
        durable = CONSUMERS[stream]
        with contextlib.suppress(NotFoundError):
            await self.js.delete_consumer(stream, durable)
        start = self.positions[stream] + 1
        config = ConsumerConfig(
            durable_name=durable,
            ack_policy=AckPolicy.ALL,  # one ack, the batch's last, covers the batch
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=start,
            ack_wait=60.0,
            max_ack_pending=20_000,
        )
        return await self.js.pull_subscribe(
            subjects.EVENT_STREAMS[stream], durable=durable, stream=stream, config=config
        )

    async def _run(self, stream: str) -> None:
        batch = self.batch * BATCH_SCALE.get(stream, DEFAULT_SCALE)
        failures = 0
        while not self._stop.is_set():
            try:
                msgs = await self._subs[stream].fetch(batch, timeout=1.0)
                failures = 0
            except (FetchTimeoutError, TimeoutError):
                continue
            except Exception as e:  # noqa: BLE001 - NATS reconnecting or consumer lost: retry
                failures += 1
                log.warning("projection_fetch_failed", stream=stream, error=str(e))
                await asyncio.sleep(min(5.0, 0.5 * failures))
                if failures % 5 == 0:
                    self._subs[stream] = await self._resubscribe(stream, self._subs[stream])
                continue
            if not msgs:  # nats-py returns [] when a pull ends on a status (e.g. 408)
                continue
            while not self._commit_logged(stream, msgs):
                # DuckDB unusable (disk full...): retry this very batch, never skip past it.
                await asyncio.sleep(1.0)
                if self._stop.is_set():
                    return
            self.applied[stream] += len(msgs)
            self.pending[stream] = msgs[-1].metadata.num_pending or 0
            with contextlib.suppress(Exception):
                await msgs[-1].ack()

    async def _resubscribe(
        self, stream: str, old: JetStreamContext.PullSubscription
    ) -> JetStreamContext.PullSubscription:
        try:
            sub = await self._subscribe(stream)
        except Exception as e:  # noqa: BLE001 - still no NATS: keep the old one and retry later
            log.warning("projection_resubscribe_failed", stream=stream, error=str(e))
            return old
        with contextlib.suppress(Exception):
            await old.unsubscribe()
        return sub

    def _commit_logged(self, stream: str, msgs: list[Msg]) -> bool:
        try:
            self._commit(stream, msgs)
        except Exception:  # the caller retries the same batch
            log.exception("projection_commit_failed", stream=stream)
            return False
        return True

    def _commit(self, stream: str, msgs: list[Msg]) -> None:
        """Apply new messages in one transaction. Synchronous on purpose: no await may come
        between commit and the in-memory position/publish, so readers see both or neither."""
        decoder, apply = PROJECTORS[stream]
        items: list[tuple[int, Any]] = []
        bad: list[tuple[int, str]] = []
        for msg in msgs:
            seq = stream_seq(msg)
            if seq <= self.positions[stream]:
                continue  # applied before the ack was lost: the tracking record says so
            try:
                items.append((seq, versions.decode_event(decoder, msg.data, msg.headers)))
            except (msgspec.DecodeError, msgspec.ValidationError) as e:
                bad.append((seq, f"undecodable: {e}"))
        last = max((s for s, _ in items), default=0)
        last = max(last, max((s for s, _ in bad), default=0))
        if not last:
            return
        try:
            with self.db.transaction() as tx:
                live = apply(tx, items)
                tracking.record_failures(tx, stream, bad)
                tracking.save(tx, CONSUMERS[stream], stream, last)
        except Exception:  # isolate the bad event, keep the others
            log.exception("projection_batch_failed", stream=stream, first=items[0][0])
            live = self._one_by_one(stream, apply, items, bad, last)
        self.positions[stream] = last
        self.metrics.inc("events_applied", len(items), stream=stream)
        self.metrics.set("position", last, stream=stream)
        self.hub.publish(live)
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def _one_by_one(
        self,
        stream: str,
        apply: Any,
        items: list[tuple[int, Any]],
        bad: list[tuple[int, str]],
        last: int,
    ) -> list[LiveEvent]:
        """Apply each event in its own transaction; one that still fails is recorded and skipped,
        so one bad event never stalls the projection."""
        live: list[LiveEvent] = []
        for seq, event in items:
            try:
                with self.db.transaction() as tx:
                    live += apply(tx, [(seq, event)])
                    tracking.save(tx, CONSUMERS[stream], stream, seq)
            except Exception as e:  # logged and recorded in `failures`
                log.exception(
                    "projection_event_failed", stream=stream, seq=seq, type=type(event).__name__
                )
                bad.append((seq, f"{type(e).__name__}: {e}"))
                self.metrics.inc("events_failed", stream=stream)
        with self.db.transaction() as tx:
            tracking.record_failures(tx, stream, bad)
            tracking.save(tx, CONSUMERS[stream], stream, last)
        return live
