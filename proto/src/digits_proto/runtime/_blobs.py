"""Blobs through the JetStream Object Store, with a local cache keyed by content digest."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, BinaryIO

from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, ObjectInfo, ObjectMeta, ObjectMetaOptions
from nats.js.errors import DigestMismatchError

from digits_proto.base import BlobRef

CHUNK = 512 * 1024  # under the 1 MB default max_payload with headroom for headers
FETCH_BATCH = 16  # chunks per pull request (8 MB in flight)
FETCH_TIMEOUT = 10.0


async def put_file(js: JetStreamContext, bucket: str, name: str, path: str | Path) -> BlobRef:
    """Upload a local file, streamed in chunks."""
    store = await js.object_store(bucket)
    meta = ObjectMeta(name=name, options=ObjectMetaOptions(max_chunk_size=CHUNK))
    with open(path, "rb") as f:
        info = await store.put(name, f, meta=meta)
    return BlobRef(bucket=bucket, name=name, digest=info.digest or "", size=info.size or 0)


async def put_reader(js: JetStreamContext, bucket: str, name: str, reader: BinaryIO) -> BlobRef:
    """Upload from an open binary file object (read in chunks, never whole in memory)."""
    store = await js.object_store(bucket)
    meta = ObjectMeta(name=name, options=ObjectMetaOptions(max_chunk_size=CHUNK))
    info = await store.put(name, reader, meta=meta)  # type: ignore[arg-type]
    return BlobRef(bucket=bucket, name=name, digest=info.digest or "", size=info.size or 0)


async def put_bytes(js: JetStreamContext, bucket: str, name: str, data: bytes) -> BlobRef:
    """Upload bytes."""
    store = await js.object_store(bucket)
    meta = ObjectMeta(name=name, options=ObjectMetaOptions(max_chunk_size=CHUNK))
    info = await store.put(name, data, meta=meta)
    return BlobRef(bucket=bucket, name=name, digest=info.digest or "", size=info.size or 0)


async def fetch(js: JetStreamContext, ref: BlobRef, cache_dir: str | Path) -> Path:
    """A local path holding the blob; downloaded once per digest, written atomically."""
    key = hashlib.sha256(f"{ref.bucket}/{ref.name}/{ref.digest}".encode()).hexdigest()[:32]
    target = Path(cache_dir) / "blobs" / key / Path(ref.name).name
    if target.exists() and (not ref.size or target.stat().st_size == ref.size):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    store = await js.object_store(ref.bucket)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".part-")
    try:
        with os.fdopen(fd, "wb") as f:
            info = await store.get_info(ref.name)
            if info.is_link() or not info.nuid:
                await store.get(ref.name, writeinto=f)  # rare: let nats-py follow the link
            else:
                await _read_chunks(js, ref.bucket, info, f)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


async def _read_chunks(js: JetStreamContext, bucket: str, info: ObjectInfo, out: BinaryIO) -> None:
    # nats-py's `get` answers flow control from a task that polls every 0.25 s (~49 MB/s,
    # stack-facts §2); an ephemeral pull consumer on the chunk subject reads 7x faster.
    if not info.size:
        return
    sub = await js.pull_subscribe(
        f"$O.{bucket}.C.{info.nuid}",
        stream=f"OBJ_{bucket}",
        config=ConsumerConfig(ack_policy=AckPolicy.NONE, mem_storage=True, inactive_threshold=30.0),
    )
    digest = hashlib.sha256()
    received = 0
    try:
        while received < info.size:
            msgs = await sub.fetch(FETCH_BATCH, timeout=FETCH_TIMEOUT)
            data = b"".join(m.data for m in msgs)
            received += len(data)
            await asyncio.to_thread(_write_and_hash, out, digest, data)
            if msgs and msgs[-1].metadata.num_pending == 0:
                break
    finally:
        with contextlib.suppress(Exception):  # the consumer also expires by itself
            name = (await sub.consumer_info()).name
            await sub.unsubscribe()
            await js.delete_consumer(f"OBJ_{bucket}", name)
    expected = (info.digest or "").replace("SHA-256=", "").replace("sha-256=", "")
    if received != info.size or (
        expected and base64.urlsafe_b64decode(expected) != digest.digest()
    ):
        raise DigestMismatchError


def _write_and_hash(out: BinaryIO, digest: Any, data: bytes) -> None:
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
            await store.delete(info.name)
            count += 1
    return count


def clear_cache(cache_dir: str | Path) -> None:
    """Drop every cached blob."""
    shutil.rmtree(Path(cache_dir) / "blobs", ignore_errors=True)
