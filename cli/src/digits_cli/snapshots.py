"""JetStream's own stream snapshot and restore API, which nats.py does not wrap.

A snapshot is the stream's store (messages with their sequences, headers and timestamps, and its
consumers' state) as an s2-compressed tar that the server streams in chunks to a deliver subject;
each chunk carries a reply subject the client acknowledges (flow control: the server stops after
a window of unacknowledged bytes, and gives up after 2 s without an acknowledgement). A restore
is the reverse: the server names a subject, the client sends chunks as requests (each is
acknowledged) and then an empty message, answered with the restored stream's info. KV and Object
Store buckets are streams (`KV_<bucket>`, `OBJ_<bucket>`), so the same two calls cover them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import IO, Any

from nats.aio.client import Client
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import DEFAULT_PREFIX

# The server's own limits: chunks of 1 KB..1 MB; ours stay well under any max_payload.
SNAPSHOT_CHUNK = 256 * 1024
RESTORE_CHUNK = 256 * 1024
# Seconds: the API answers and a chunk's acknowledgement. The first snapshot chunk and the
# restore's final answer may wait on the server checking or writing a large store.
API_TIMEOUT = 30.0
CHUNK_TIMEOUT = 120.0


class SnapshotError(Exception):
    """The server refused or broke off a snapshot or restore (the message says why)."""


def _api(verb: str, stream: str) -> str:
    # The server's JetStream API, spelled as nats.py spells it (not one of DIGITS's subjects).
    return f"{DEFAULT_PREFIX}.STREAM.{verb}.{stream}"


def _answer(data: bytes, what: str) -> dict[str, Any]:
    try:
        answer = json.loads(data or b"{}")
    except ValueError as e:
        raise SnapshotError(f"{what}: unreadable answer from the server: {data[:200]!r}") from e
    if err := answer.get("error"):
        raise SnapshotError(f"{what}: {err.get('description', err)} (code {err.get('code')})")
    return answer


async def snapshot(
    nc: Client, stream: str, out: IO[bytes], on_chunk: Callable[[int], None]
) -> dict[str, Any]:
    """Write `stream`'s snapshot to `out`; returns the server's answer (config and state)."""
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    try:
        request = {"deliver_subject": inbox, "no_consumers": False, "chunk_size": SNAPSHOT_CHUNK}
        reply = await nc.request(
            _api("SNAPSHOT", stream), json.dumps(request).encode(), timeout=API_TIMEOUT
        )
        answer = _answer(reply.data, f"snapshot of {stream}")
        while True:
            try:
                msg = await sub.next_msg(timeout=CHUNK_TIMEOUT)
            except NatsTimeoutError as e:
                raise SnapshotError(
                    f"snapshot of {stream}: no data for {CHUNK_TIMEOUT:.0f} s"
                ) from e
            status = (msg.headers or {}).get("Status", "")
            if status and status not in ("204", "200"):
                why = (msg.headers or {}).get("Description", "")
                raise SnapshotError(
                    f"snapshot of {stream} broken off by the server: {status} {why}"
                )
            if not msg.data:  # the end
                return answer
            out.write(msg.data)
            on_chunk(len(msg.data))
            if msg.reply:
                await nc.publish(msg.reply, b"")
    finally:
        await sub.unsubscribe()


async def restore(
    nc: Client,
    stream: str,
    meta: dict[str, Any],
    src: IO[bytes],
    on_chunk: Callable[[int], None],
) -> dict[str, Any]:
    """Re-create `stream` from a snapshot read from `src` (`meta`: the snapshot's config and
    state); the stream must not exist. Returns the restored stream's info."""
    what = f"restore of {stream}"
    request = {"config": meta["config"], "state": meta.get("state", {})}
    reply = await nc.request(
        _api("RESTORE", stream), json.dumps(request).encode(), timeout=API_TIMEOUT
    )
    deliver = _answer(reply.data, what).get("deliver_subject")
    if not deliver:
        raise SnapshotError(f"{what}: the server named no subject to send the snapshot to")
    while chunk := src.read(RESTORE_CHUNK):
        ack = await nc.request(deliver, chunk, timeout=CHUNK_TIMEOUT)
        if ack.data:  # an acknowledgement is empty; anything else is the server's error
            _answer(ack.data, what)
        on_chunk(len(chunk))
    done = await nc.request(deliver, b"", timeout=CHUNK_TIMEOUT)
    return _answer(done.data, what)
