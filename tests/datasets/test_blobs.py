"""Object Store blobs: the pull-consumer reader returns exactly what was put."""

from __future__ import annotations

import os
from pathlib import Path

from digits_proto import subjects
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
