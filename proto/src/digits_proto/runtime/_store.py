"""Aggregates on JetStream: load = fold a subject's events, append = guarded by sequence."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

import msgspec
import nats.errors
import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import PubAck
from nats.js.errors import APIError, NotFoundError

from digits_proto import codec, headers, versions
from digits_proto.base import Event
from digits_proto.runtime._metrics import metrics_for
from digits_proto.runtime._replicas import publish_once, riding_out
from digits_proto.runtime._trace import trace_headers

log = structlog.get_logger(__name__)

E = TypeVar("E", bound=Event)
WRONG_LAST_SEQUENCE = 10071
# Events per batched direct get, and the bytes cap of one answer: a batch never overruns the
# subscription's pending limits (nats-py drops messages past 64 MB as a slow consumer).
LOAD_BATCH = 1000
LOAD_MAX_BYTES = 8 * 1024 * 1024
SEQUENCE, NUM_PENDING = "Nats-Sequence", "Nats-Num-Pending"
# Any replica answers a direct get, a follower a little behind too: a load that comes back
# older than what this store already saw (its own append, an earlier load) is asked again for
# up to this long, so one store's reads never go back; past it the older answer stands (a
# subject purged since, where the newest is truly gone).
CATCH_UP_SECONDS = 2.0
CATCH_UP_PAUSE = 0.02
NEWEST_KEPT = 10_000  # subjects remembered per store (then it starts afresh)


class ConcurrencyError(Exception):
    """Someone appended to the aggregate since we loaded it."""


def _json(value: Any) -> bytes:
    return msgspec.json.encode(value)


class _Batch:
    """The answers of one batched direct get: the messages, then the status that ends them."""

    def __init__(self) -> None:
        self._msgs: list[Msg] = []
        self._end: asyncio.Future[dict[str, str]] | None = None

    async def on_msg(self, msg: Msg) -> None:
        hdrs = msg.headers or {}
        if "Status" in hdrs:  # 204 end of batch, 404 nothing (more), or an error
            if self._end is not None and not self._end.done():
                self._end.set_result(dict(hdrs))
        else:
            self._msgs.append(msg)

    async def get(
        self, request: Awaitable[None], timeout: float
    ) -> tuple[list[Msg], dict[str, str]]:
        """Send the request; the batch's messages and its closing status headers."""
        self._msgs, self._end = [], asyncio.get_running_loop().create_future()
        await request
        try:
            end = await asyncio.wait_for(self._end, timeout)
        except TimeoutError as e:
            raise nats.errors.TimeoutError from e
        return self._msgs, end


class EventStore(Generic[E]):
    """Load and append the events of one context's aggregates (one subject per aggregate)."""

    def __init__(self, js: JetStreamContext, stream: str, decoder: msgspec.json.Decoder[Any]):
        self.js = js
        self.stream = stream
        self.decoder = decoder
        self._newest: dict[str, int] = {}  # subject -> the newest sequence this store saw

    def _saw(self, subject: str, seq: int) -> None:
        if len(self._newest) >= NEWEST_KEPT and subject not in self._newest:
            self._newest.clear()
        self._newest[subject] = max(seq, self._newest.get(subject, 0))

    async def load(self, subject: str) -> tuple[list[E], int]:
        """All events of one aggregate, oldest first, and the stream sequence of the last one.

        Batched direct gets (nats-server ≥ 2.11, ADR-31): one request answers up to `LOAD_BATCH`
        events of the subject and ends with an EOB status saying how many are left, so a long
        job's history takes a few round trips instead of one per event. Needs only the
        `DIRECT.GET` right every reader already has (no consumer is created).
        """
        # Any replica answers a direct get, so an election seldom delays one; a batch left
        # unanswered (its node just lost) makes the load start over.
        longest = self.js._timeout
        floor = self._newest.get(subject, 0)
        give_up = asyncio.get_running_loop().time() + CATCH_UP_SECONDS
        while True:
            events, last = await riding_out(
                f"load {subject}", lambda t: self._load(subject, t), longest=longest, first=longest
            )
            if last >= floor or asyncio.get_running_loop().time() > give_up:
                break
            await asyncio.sleep(CATCH_UP_PAUSE)  # a replica behind this store: it catches up
        self._saw(subject, last)
        return events, last

    async def _load(self, subject: str, timeout: float) -> tuple[list[E], int]:
        events: list[E] = []
        last = 0
        nc = self.js._nc  # nats-py has no batched direct get: request it on its API subject
        api = f"{self.js._prefix}.DIRECT.GET.{self.stream}"
        batch = _Batch()
        inbox = nc.new_inbox()
        sub = await nc.subscribe(inbox, cb=batch.on_msg)
        try:
            while True:
                request = {"seq": last + 1, "next_by_subj": subject, "batch": LOAD_BATCH}
                request["max_bytes"] = LOAD_MAX_BYTES
                msgs, end = await batch.get(nc.publish(api, _json(request), reply=inbox), timeout)
                for msg in msgs:
                    events.append(versions.decode_event(self.decoder, msg.data or b"", msg.headers))
                    last = int(msg.headers[SEQUENCE])  # type: ignore[index]
                status = end.get("Status")
                if status == "404":
                    return events, last
                if status == "503":  # no replica answers direct gets (yet): an election
                    raise nats.errors.NoRespondersError
                if status != "204":
                    raise APIError(code=int(status or 0), description=end.get("Description", ""))
                if not msgs or int(end.get(NUM_PENDING, "0")) == 0:
                    return events, last
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def append(
        self,
        subject: str,
        events: Sequence[E],
        expected_last_seq: int | None,
        correlation_id: str = "",
    ) -> int:
        """Append events in order; the first must find the subject at `expected_last_seq`.

        Returns the stream sequence of the last event (or `expected_last_seq` if none).
        `None` skips the check (only for facts that cannot conflict, e.g. metrics).
        """
        last = expected_last_seq or 0
        for event in events:
            hdrs = {headers.MSG_ID: event.event_id, headers.SCHEMA: versions.schema_header(event)}
            if correlation_id:
                hdrs[headers.CORRELATION_ID] = correlation_id
            hdrs = trace_headers(hdrs)  # the chain being handled, and what caused this event
            if expected_last_seq is not None:
                hdrs[headers.EXPECTED_LAST_SUBJECT_SEQ] = str(last)
            data = codec.encode(event)
            try:
                last = (await self._publish(subject, data, hdrs)).seq
            except APIError as e:
                if e.err_code != WRONG_LAST_SEQUENCE:
                    raise
                stored = await self.stored_after(subject, last, event.event_id)
                if stored is None:
                    raise ConcurrencyError(subject) from e
                last = stored
            if (metrics := metrics_for(self.js._nc)) is not None:
                metrics.inc("events_appended", stream=self.stream, type=type(event).__name__)
            log.debug("event_appended", subject=subject, type=type(event).__name__, seq=last)
        self._saw(subject, last)
        return last

    async def stored_after(self, subject: str, seq: int, msg_id: str) -> int | None:
        """The sequence of the subject's first message after `seq` if its Nats-Msg-Id is
        `msg_id`, else None.

        A single nats-server checks the expected last subject sequence before the duplicate
        window: a resent message its first attempt stored (the ack lost to a restart or an
        election) comes back "wrong last sequence". It was stored right after `seq`, so that
        message says whether the conflict is our own first attempt.
        """

        async def next_message(_timeout: float) -> Any:
            return await self.js.get_msg(self.stream, seq=seq + 1, subject=subject, next=True)

        try:
            msg = await riding_out(f"check of {subject}", next_message)
        except NotFoundError:
            return None
        return int(msg.seq) if (msg.headers or {}).get(headers.MSG_ID) == msg_id else None

    async def _publish(self, subject: str, data: bytes, hdrs: dict[str, str]) -> PubAck:
        # A stream leader election answers "no responders" or nothing at all: the same message
        # is sent again until the deadline; its Nats-Msg-Id (the event id) makes the stream
        # store it once and answer a repeat with the first one's sequence.
        return await publish_once(self.js, subject, data, hdrs)

    async def update(
        self,
        subject: str,
        decide: Callable[[list[E]], Sequence[E]] | Callable[[list[E]], Awaitable[Sequence[E]]],
        attempts: int = 8,
    ) -> tuple[list[E], int]:
        """Load, decide, append; on a concurrent append, reload and decide again.

        `decide` gets the history and returns the new events (it may raise a domain error).
        Returns the new events and the sequence of the last one.
        """
        for _ in range(attempts):
            history, seq = await self.load(subject)
            result = decide(history)
            new = list(await result if isinstance(result, Awaitable) else result)
            try:
                return new, await self.append(subject, new, seq)
            except ConcurrencyError:
                log.info("append_conflict_retry", subject=subject)
        raise ConcurrencyError(subject)
