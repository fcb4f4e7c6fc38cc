"""Aggregates on JetStream: load = fold a subject's events, append = guarded by sequence."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

import msgspec
import structlog
from nats.js import JetStreamContext
from nats.js.errors import APIError, NotFoundError

from digits_proto import codec, headers
from digits_proto.base import Event

log = structlog.get_logger(__name__)

E = TypeVar("E", bound=Event)
WRONG_LAST_SEQUENCE = 10071


class ConcurrencyError(Exception):
    """Someone appended to the aggregate since we loaded it."""


class EventStore(Generic[E]):
    """Load and append the events of one context's aggregates (one subject per aggregate)."""

    def __init__(self, js: JetStreamContext, stream: str, decoder: msgspec.json.Decoder[Any]):
        self.js = js
        self.stream = stream
        self.decoder = decoder

    async def load(self, subject: str) -> tuple[list[E], int]:
        """All events of one aggregate, oldest first, and the stream sequence of the last one."""
        events: list[E] = []
        seq, last = 1, 0
        while True:
            try:
                msg = await self.js.get_msg(self.stream, seq=seq, subject=subject, next=True)
            except NotFoundError:
                return events, last
            assert msg.seq is not None
            events.append(self.decoder.decode(msg.data or b""))
            last = msg.seq
            seq = msg.seq + 1

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
            hdrs = {headers.MSG_ID: event.event_id}
            if correlation_id:
                hdrs[headers.CORRELATION_ID] = correlation_id
            if expected_last_seq is not None:
                hdrs[headers.EXPECTED_LAST_SUBJECT_SEQ] = str(last)
            try:
                ack = await self.js.publish(subject, codec.encode(event), headers=hdrs)
            except APIError as e:
                if e.err_code == WRONG_LAST_SEQUENCE:
                    raise ConcurrencyError(subject) from e
                raise
            last = ack.seq
            log.debug("event_appended", subject=subject, type=type(event).__name__, seq=last)
        return last

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
