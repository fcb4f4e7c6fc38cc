"""Idempotent commands: a retry (same principal, same Idempotency-Key) gets the first answer.

A create is deduplicated by JetStream itself: the new job's first event is published with a
`Nats-Msg-Id` derived from (principal, key), so a second publish inside the stream's duplicate
window is dropped and acknowledged with the first one's sequence, from which the first job is
read back. After the window the gateway's read model answers (the created event records the
key). An abort or delete finds its key in the aggregate's own history, which never expires.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, TypeVar

from nats.js.errors import APIError

from digits_proto import codec, headers, versions
from digits_proto.base import Event
from digits_proto.runtime._micro import DomainError
from digits_proto.runtime._replicas import publish_once
from digits_proto.runtime._store import WRONG_LAST_SEQUENCE, EventStore
from digits_proto.runtime._trace import trace_headers

E = TypeVar("E", bound=Event)


class KeyReused(DomainError):
    """The Idempotency-Key was used before for a different request (IETF draft, Stripe: 422)."""

    code = 422

    def __init__(self) -> None:
        super().__init__(
            "This Idempotency-Key was used for a different request; use a new key",
            field="Idempotency-Key",
        )


def create_msg_id(username: str, key: str) -> str:
    """The `Nats-Msg-Id` of the first event a keyed create appends (one per principal and key:
    another user's same key is another command)."""
    digest = hashlib.sha256(f"{username}\0{key}".encode()).hexdigest()[:40]
    return f"idem-{digest}"


async def append_created(
    store: EventStore[E], subject: str, events: Sequence[E], msg_id: str
) -> tuple[int, E | None]:
    """Append a new aggregate's events, the first under `msg_id`.

    Returns `(seq of the last event, None)`; or, when the stream already holds an event with
    that id (a retried create), `(seq of that event, that event)`: nothing is appended.
    """
    hdrs = {
        headers.MSG_ID: msg_id,
        headers.EXPECTED_LAST_SUBJECT_SEQ: "0",
        headers.SCHEMA: versions.schema_header(events[0]),
    }
    hdrs = trace_headers(hdrs)
    try:
        ack = await publish_once(store.js, subject, codec.encode(events[0]), hdrs)
        seq, duplicate = ack.seq, bool(ack.duplicate)
    except APIError as e:  # a single server: our own resent first attempt, or a real conflict
        if e.err_code != WRONG_LAST_SEQUENCE:
            raise
        stored = await store.stored_after(subject, 0, msg_id)
        if stored is None:
            raise
        seq, duplicate = stored, True
    if duplicate:
        msg = await store.js.get_msg(store.stream, seq=seq)
        first = versions.decode_event(store.decoder, msg.data or b"", msg.headers)
        # Our own first attempt (resent while the stream elected a leader) is no earlier create.
        if first.event_id != events[0].event_id:
            return seq, first
    rest = events[1:]
    return (await store.append(subject, rest, seq) if rest else seq), None


def same_request(original: Any, request_digest: str) -> None:
    """Refuse (422) a retry whose request differs from the first one's."""
    if getattr(original, "request_digest", "") != request_digest:
        raise KeyReused()


def keyed_before(history: Sequence[Any], key: str, actor: str) -> bool:
    """True when `actor` already changed this aggregate under `key` (a retried abort)."""
    return bool(key) and any(
        getattr(e, "idempotency_key", "") == key and getattr(e, "actor", "") == actor
        for e in history
    )
