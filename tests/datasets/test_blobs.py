"""Object Store blobs: the pull-consumer reader returns exactly what was put."""

from __future__ import annotations

import os
from pathlib import Path

from digits_proto import subjects
from digits_proto.base import BlobRef
from digits_proto.runtime import fetch, put_bytes, put_file
from digits_proto.runtime._blobs import CHUNK


async def test_multi_chunk_blob_round_trips_byte_for_byte(js, tmp_path: Path) -> None:
    """A blob of many chunks plus a partial one comes back identical, and is cached."""
    data = os.urandom(CHUNK * 37 + 12345)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    ref = await put_file(js, subjects.BUCKET_DATASETS, "d1/train.rec", src)
    path = await fetch(js, ref, tmp_path / "cache")
    assert path.read_bytes() == data
    assert await fetch(js, ref, tmp_path / "cache") == path


async def test_empty_and_tiny_blobs_round_trip(js, tmp_path: Path) -> None:
    """Zero-byte and one-byte blobs are fetched as such."""
    for name, data in (("d1/empty", b""), ("d1/one", b"x")):
        ref = await put_bytes(js, subjects.BUCKET_DATASETS, name, data)
        assert (await fetch(js, ref, tmp_path)).read_bytes() == data


async def test_fetch_leaves_no_consumer_behind(js, tmp_path: Path) -> None:
    """The ephemeral chunk consumer is deleted after the read."""
    ref = await put_bytes(js, subjects.BUCKET_DATASETS, "d1/x", os.urandom(CHUNK * 3))
    await fetch(js, ref, tmp_path)
    info = await js.stream_info(f"OBJ_{subjects.BUCKET_DATASETS}")
    assert info.state.consumer_count == 0


async def test_blob_put_with_other_chunk_size_is_fetched_whole(js, tmp_path: Path) -> None:
    """An object written by another client (nats-py's 128 KB chunks) is read by its own count."""
    data = os.urandom(128 * 1024 * 40 + 7)
    store = await js.object_store(subjects.BUCKET_DATASETS)
    info = await store.put("d1/other.bin", data)
    assert info.chunks == 41
    ref = BlobRef(
        bucket=subjects.BUCKET_DATASETS, name="d1/other.bin", digest=info.digest, size=len(data)
    )
    assert (await fetch(js, ref, tmp_path)).read_bytes() == data


async def test_nats_py_reads_our_put_and_a_replaced_object_drops_its_old_chunks(
    js, tmp_path: Path
) -> None:
    """The pipelined put stores what nats-py's put would: nats-py's get reads it back, and
    putting the name again leaves only the new chunks in the stream."""
    first, second = os.urandom(CHUNK * 5 + 3), os.urandom(CHUNK * 2 + 1)
    await put_bytes(js, subjects.BUCKET_DATASETS, "d1/x.rec", first)
    store = await js.object_store(subjects.BUCKET_DATASETS)
    assert (await store.get("d1/x.rec")).data == first
    ref = await put_bytes(js, subjects.BUCKET_DATASETS, "d1/x.rec", second)
    assert (await fetch(js, ref, tmp_path)).read_bytes() == second
    info = await store.get_info("d1/x.rec")
    assert (info.size, info.chunks) == (len(second), 3)
    stream = await js.stream_info(f"OBJ_{subjects.BUCKET_DATASETS}")
    assert stream.state.messages == 3 + 1  # three chunks and one meta message
