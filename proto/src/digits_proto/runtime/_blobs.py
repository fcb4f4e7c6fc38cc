"""Blobs through the JetStream Object Store, with a local cache keyed by content digest."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import io
import json
import os
import shutil
import tempfile
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import structlog
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, Header, ObjectInfo, ObjectMetaOptions
from nats.js.errors import DigestMismatchError, NotFoundError, ObjectNotFoundError
from nats.js.kv import MSG_ROLLUP_SUBJECT
from nats.js.object_store import (
    OBJ_CHUNKS_PRE_TEMPLATE,
    OBJ_DIGEST_TEMPLATE,
    OBJ_META_PRE_TEMPLATE,
    OBJ_STREAM_TEMPLATE,
)

from digits_proto.base import BlobRef
from digits_proto.runtime._replicas import BusUnavailable, riding_out

log = structlog.get_logger(__name__)

# Under the 1 MB default max_payload with headroom for headers; put is ~2x faster with
# near-1 MB chunks than with 512 KB ones (one acknowledged publish per chunk).
CHUNK = 960 * 1024
WINDOW = 16  # chunks requested ahead of those received (15 MB at most in flight)
PUT_WINDOW = 8  # chunks sent ahead of their acks
WRITE_BYTES = 4 * 1024 * 1024  # written and hashed in one thread hop
FETCH_TIMEOUT = 10.0  # no chunk for this long from an object still there: the read fails
STALL_CHECK = 0.5  # no chunk for this long: check the object was not replaced meanwhile
READ_ATTEMPTS = 3


async def put_file(js: JetStreamContext, bucket: str, name: str, path: str | Path) -> BlobRef:
    """Upload a local file, streamed in chunks."""
    with open(path, "rb") as f:
        return await _put(js, bucket, name, f)


async def put_reader(js: JetStreamContext, bucket: str, name: str, reader: BinaryIO) -> BlobRef:
    """Upload from an open binary file object (read in chunks, never whole in memory)."""
    return await _put(js, bucket, name, reader)


async def put_bytes(js: JetStreamContext, bucket: str, name: str, data: bytes) -> BlobRef:
    """Upload bytes."""
    return await _put(js, bucket, name, io.BytesIO(data))


async def _put(js: JetStreamContext, bucket: str, name: str, reader: BinaryIO) -> BlobRef:
    # A stream leader election fails a chunk's publish: the put starts over from the reader's
    # start (a new object id; the failed attempt's chunks are purged). A reader that cannot
    # seek back (a request body streamed through) gets one attempt.
    if not getattr(reader, "seekable", lambda: False)():
        return await _put_once(js, bucket, name, reader)
    start = reader.tell()

    async def attempt(_timeout: float) -> BlobRef:
        reader.seek(start)
        return await _put_once(js, bucket, name, reader)

    return await riding_out(f"put {bucket}/{name}", attempt, first=FETCH_TIMEOUT)


async def _put_once(js: JetStreamContext, bucket: str, name: str, reader: BinaryIO) -> BlobRef:
    # nats-py's ObjectStore.put, byte for byte in what it stores, except that it waits for each
    # chunk's ack before reading the next (one round trip per chunk); here up to PUT_WINDOW
    # chunks await their acks while the next ones are read and sent.
    store = await js.object_store(bucket)
    stream = OBJ_STREAM_TEMPLATE.format(bucket=bucket)
    nuid = js._nc._nuid.next().decode()  # pyright: ignore[reportPrivateUsage]
    chunk_subject = OBJ_CHUNKS_PRE_TEMPLATE.format(bucket=bucket, obj=nuid)
    try:
        previous: ObjectInfo | None = await store.get_info(name)
    except NotFoundError:
        previous = None
    digest = hashlib.sha256()
    size = chunks = 0
    wait = js._timeout  # pyright: ignore[reportPrivateUsage]
    acks: deque[asyncio.Future[Any]] = deque()
    try:
        while data := await asyncio.to_thread(_read_and_hash, reader, digest):
            acks.append(await js.publish_async(chunk_subject, data))
            size, chunks = size + len(data), chunks + 1
            while len(acks) >= PUT_WINDOW or (acks and acks[0].done()):
                await _acked(acks.popleft(), wait)
        while acks:
            await _acked(acks.popleft(), wait)
    except BaseException:
        for ack in acks:
            ack.cancel()
        with contextlib.suppress(Exception):
            await js.purge_stream(stream, subject=chunk_subject)
        raise
    info = ObjectInfo(
        name=name,
        bucket=bucket,
        nuid=nuid,
        size=size,
        chunks=chunks,
        mtime=datetime.now(UTC).isoformat(),
        digest=OBJ_DIGEST_TEMPLATE.format(
            digest=base64.urlsafe_b64encode(digest.digest()).decode()
        ),
        options=ObjectMetaOptions(max_chunk_size=CHUNK),
    )
    meta_subject = OBJ_META_PRE_TEMPLATE.format(
        bucket=bucket, obj=base64.urlsafe_b64encode(name.encode()).decode()
    )
    try:
        await js.publish(
            meta_subject,
            json.dumps(info.as_dict()).encode(),
            headers={Header.ROLLUP: MSG_ROLLUP_SUBJECT},
        )
    except BaseException:
        with contextlib.suppress(Exception):
            await js.purge_stream(stream, subject=chunk_subject)
        raise
    if previous is not None and not previous.deleted:  # a replaced object's chunks go
        old = OBJ_CHUNKS_PRE_TEMPLATE.format(bucket=bucket, obj=previous.nuid)
        try:
            await riding_out(f"purge {old}", lambda _t: js.purge_stream(stream, subject=old))
        except BusUnavailable as e:  # stored all the same: only the old chunks' space stays
            log.warning("old_chunks_left", bucket=bucket, name=name, error=str(e))
    return BlobRef(bucket=bucket, name=name, digest=info.digest or "", size=size)


async def _acked(ack: asyncio.Future[Any], timeout: float) -> None:
    # nats-py's publish_async futures have no deadline: a chunk sent to a stream leader just
    # lost would be waited for forever. A timeout makes the put start over (see `_put`).
    await asyncio.wait_for(ack, timeout)


def _read_and_hash(reader: BinaryIO, digest: Any) -> bytes:
    data = reader.read(CHUNK)
    digest.update(data)
    return data


class _Replaced(Exception):
    """The object was replaced (or deleted) while it was being read: its old chunks are gone."""


async def read_blob(js: JetStreamContext, bucket: str, name: str, out: BinaryIO) -> ObjectInfo:
    """Write the object `name` into `out` (from its start) and return its info.

    Objects rewritten in place (job statuses, logs) have their old chunks purged once the new
    ones are in; nats-py's `get` then waits forever on the old chunks. Here a read that loses
    that race starts over on the new object. Missing or deleted: nats' ObjectNotFoundError or
    ObjectDeletedError."""
    # A stream leader election (or a lost node) leaves a read unanswered: it starts over.
    return await riding_out(
        f"read {bucket}/{name}", lambda _t: _read_blob(js, bucket, name, out), first=FETCH_TIMEOUT
    )


async def _read_blob(js: JetStreamContext, bucket: str, name: str, out: BinaryIO) -> ObjectInfo:
    store = await js.object_store(bucket)
    for attempt in range(READ_ATTEMPTS):
        info = await store.get_info(name)
        out.seek(0)
        out.truncate()
        if info.is_link() or not info.nuid:
            await store.get(name, writeinto=out)  # rare: let nats-py follow the link
            return info
        try:
            await _read_chunks(js, bucket, info, out)
            return info
        except (_Replaced, DigestMismatchError):
            if attempt == READ_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


async def read_bytes(js: JetStreamContext, bucket: str, name: str) -> bytes:
    """The whole object `name` (for small ones: statuses, lists, logs); see `read_blob`."""
    out = io.BytesIO()
    await read_blob(js, bucket, name, out)
    return out.getvalue()


async def fetch(js: JetStreamContext, ref: BlobRef, cache_dir: str | Path) -> Path:
    """A local path holding the blob; downloaded once per digest, written atomically."""
    key = hashlib.sha256(f"{ref.bucket}/{ref.name}/{ref.digest}".encode()).hexdigest()[:32]
    target = Path(cache_dir) / "blobs" / key / Path(ref.name).name
    if target.exists() and (not ref.size or target.stat().st_size == ref.size):
        with contextlib.suppress(OSError):  # marks the entry used (a size-bounded cache keeps it)
            os.utime(target.parent)
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".part-")
    try:
        with os.fdopen(fd, "wb") as f:
            await read_blob(js, ref.bucket, ref.name, f)
        os.replace(tmp, target)
    except OSError as e:  # a full disk's write error names no file; the job's error must
        if e.filename is None:
            raise OSError(e.errno, e.strerror or str(e), str(target)) from e
        raise
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


async def _read_chunks(js: JetStreamContext, bucket: str, info: ObjectInfo, out: BinaryIO) -> None:
    # nats-py's `get` answers flow control from a task that polls every 0.25 s (~49 MB/s,
    # stack-facts §2). Instead: an ephemeral pull consumer on the chunk subject, fed by pull
    # requests sent ahead (a window of WINDOW chunks in flight, so the server never waits for
    # our round trip), and the disk write + hash of one batch overlapping the next receive.
    if not info.size:
        return
    stream = f"OBJ_{bucket}"
    consumer = await js.add_consumer(
        stream,
        ConsumerConfig(
            filter_subject=f"$O.{bucket}.C.{info.nuid}",
            ack_policy=AckPolicy.NONE,
            mem_storage=True,
            inactive_threshold=30.0,
        ),
    )
    nc = js._nc  # pyright: ignore[reportPrivateUsage]
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox, pending_bytes_limit=0)  # the window bounds what is pending
    next_subject = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer.name}"
    chunks = info.chunks or info.size  # unknown count: at most one chunk per byte
    digest = hashlib.sha256()
    received = requested = got = 0
    batch: list[bytes] = []
    writing: asyncio.Future[None] | None = None
    try:
        while received < info.size:
            while requested < chunks and requested - got < WINDOW:
                ask = min(WINDOW // 2, chunks - requested)
                await nc.publish(next_subject, json.dumps({"batch": ask}).encode(), reply=inbox)
                requested += ask
            msg = await _next_chunk(js, bucket, info, sub)
            if msg.headers and msg.headers.get("Status"):
                continue  # a status (heartbeat, timeout) carries no chunk
            got += 1
            received += len(msg.data)
            batch.append(msg.data)
            if sum(map(len, batch)) >= WRITE_BYTES or received >= info.size:
                if writing is not None:
                    await writing
                writing = asyncio.ensure_future(
                    asyncio.to_thread(_write_and_hash, out, digest, batch)
                )
                batch = []
        if writing is not None:
            await writing
    finally:
        if writing is not None and not writing.done():  # never leave a write to a closed file
            with contextlib.suppress(Exception):
                await writing
        with contextlib.suppress(Exception):  # the consumer also expires by itself
            await sub.unsubscribe()
            await js.delete_consumer(stream, consumer.name)
    expected = (info.digest or "").replace("SHA-256=", "").replace("sha-256=", "")
    if received != info.size or (
        expected and base64.urlsafe_b64decode(expected) != digest.digest()
    ):
        raise DigestMismatchError


async def _next_chunk(js: JetStreamContext, bucket: str, info: ObjectInfo, sub: Any) -> Any:
    # A quiet moment may mean the chunks were purged under us (the object was rewritten): then
    # no chunk will ever come. Look at the object's meta before waiting on.
    waited = 0.0
    while True:
        try:
            return await sub.next_msg(timeout=STALL_CHECK)
        except TimeoutError:
            waited += STALL_CHECK
            try:
                now = await (await js.object_store(bucket)).get_info(info.name)
            except NotFoundError as e:
                raise _Replaced(info.name) from e
            if now.nuid != info.nuid:
                raise _Replaced(info.name) from None
            if waited >= FETCH_TIMEOUT:
                raise


def _write_and_hash(out: BinaryIO, digest: Any, parts: list[bytes]) -> None:
    for data in parts:  # part by part: joining them first would copy every byte once more
        out.write(data)
        digest.update(data)


async def delete_prefix(js: JetStreamContext, bucket: str, prefix: str) -> int:
    """Delete every object whose name starts with `prefix`; returns how many."""
    store = await js.object_store(bucket)
    try:
        infos = await store.list()
    except Exception:  # noqa: BLE001 - an empty bucket raises NotFoundError in nats-py
        return 0
    count = 0
    for info in infos:
        if info.name.startswith(prefix) and not info.deleted:
            # Gone since the listing (an aborted build clearing its own blobs, say): done.
            with contextlib.suppress(ObjectNotFoundError):
                await store.delete(info.name)
                count += 1
    return count


def clear_cache(cache_dir: str | Path) -> None:
    """Drop every cached blob."""
    shutil.rmtree(Path(cache_dir) / "blobs", ignore_errors=True)
