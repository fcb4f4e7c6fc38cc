"""Blobs through the JetStream Object Store, with a local cache keyed by content digest."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from nats.js import JetStreamContext
from nats.js.api import ObjectMeta, ObjectMetaOptions

from digits_proto.base import BlobRef

CHUNK = 512 * 1024  # under the 1 MB default max_payload with headroom for headers


async def put_file(js: JetStreamContext, bucket: str, name: str, path: str | Path) -> BlobRef:
    """Upload a local file, streamed in chunks."""
    store = await js.object_store(bucket)
    meta = ObjectMeta(name=name, options=ObjectMetaOptions(max_chunk_size=CHUNK))
    with open(path, "rb") as f:
        info = await store.put(name, f, meta=meta)
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
            await store.get(ref.name, writeinto=f)  # writeinto avoids nats-py's quadratic concat
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


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
