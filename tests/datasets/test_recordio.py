"""The pure-Python RecordIO writer and reader against MXNet's own, byte for byte."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import mxnet as mx
import pytest

from digits_proto import recordio

MAGIC = struct.pack("<I", recordio.MAGIC)
PAYLOADS = [
    b"",
    b"x",
    b"abc",
    os.urandom(1001),
    MAGIC,  # the whole image is the magic
    b"abcd" + MAGIC + b"efgh" + MAGIC + MAGIC + b"ij",  # aligned (split) after the header
    b"abc" + MAGIC + b"defg",  # unaligned: not split
    b"abcdefgh" + MAGIC,  # aligned at the very end
]


def write_both(tmp_path: Path, images: list[bytes]) -> tuple[Path, Path, Path, Path]:
    ours = (tmp_path / "o.idx", tmp_path / "o.rec")
    theirs = (tmp_path / "m.idx", tmp_path / "m.rec")
    writer = recordio.open_writer(*ours)
    mx_writer = mx.recordio.MXIndexedRecordIO(str(theirs[0]), str(theirs[1]), "w")
    for i, image in enumerate(images):
        recordio.write(writer, i, i % 3, image)
        mx_writer.write_idx(i, mx.recordio.pack(mx.recordio.IRHeader(0, float(i % 3), i, 0), image))
    writer.close()
    mx_writer.close()
    return *ours, *theirs


def test_files_are_identical_to_mxnets_even_when_images_hold_the_magic(tmp_path: Path) -> None:
    """Same .rec and .idx bytes as MXIndexedRecordIO, magic-splitting included."""
    o_idx, o_rec, m_idx, m_rec = write_both(tmp_path, PAYLOADS)
    assert o_rec.read_bytes() == m_rec.read_bytes()
    assert o_idx.read_text() == m_idx.read_text()


@pytest.mark.parametrize("image", PAYLOADS)
def test_reader_returns_what_mxnet_reads(tmp_path: Path, image: bytes) -> None:
    """Every record (also split ones) reads back as MXNet's reader sees it."""
    o_idx, o_rec, m_idx, m_rec = write_both(tmp_path, [b"first", image])
    reader = mx.recordio.MXIndexedRecordIO(str(m_idx), str(m_rec), "r")
    offset = int(o_idx.read_text().splitlines()[1].split("\t")[1])
    with open(o_rec, "rb") as f:
        payload = recordio.read_record(f.fileno(), offset)
    assert payload == reader.read_idx(1)
    label, data = recordio.unpack(payload)
    assert (label, data) == (1.0, image)
    reader.close()
