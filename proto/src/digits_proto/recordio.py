"""RecordIO (MXNet's `.rec` + `.idx`), written and read in pure Python, byte for byte as dmlc.

The one implementation of the format: the datasets service writes shards with it, the trainer
streams them back and the explorer pages through them, none importing MXNet (which costs a
process seconds of CPU and ~200 MB).

The framing is dmlc-core's `RecordIOWriter::WriteRecord`: magic, `cflag << 29 | length`, the
bytes, zero padding to 4; a payload holding the magic at a 4-aligned offset is split there
into parts (cflag 1 = first, 2 = middle, 3 = last), the magic itself dropped. The payload is
MXNet's `recordio.pack(IRHeader(0, label, id, 0), image)`; the `.idx` has `key\\toffset` lines.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import BinaryIO

MAGIC = 0xCED7230A  # dmlc RecordIO's record marker
MAGIC_BYTES = struct.pack("<I", MAGIC)
FRAME = struct.Struct("<II")  # magic, (continuation flag << 29) | length
HEADER = struct.Struct("<IfQQ")  # MXNet's IRHeader: flag, label, id, id2
LENGTH_MASK = (1 << 29) - 1


class Writer:
    """An indexed RecordIO pair open for writing (MXIndexedRecordIO's `write_idx`)."""

    def __init__(self, idx: Path, rec: Path):
        self.rec: BinaryIO = open(rec, "wb")  # noqa: SIM115 - closed by close()
        self.idx = open(idx, "w", encoding="ascii")  # noqa: SIM115
        self.pos = 0

    def write_idx(self, key: int, payload: bytes) -> None:
        """Append one record and its index line."""
        self.idx.write(f"{key}\t{self.pos}\n")
        self.pos += write_record(self.rec, payload)

    def close(self) -> None:
        """Flush and close both files."""
        self.rec.close()
        self.idx.close()


def open_writer(idx: Path, rec: Path) -> Writer:
    """A writer for one split (call it off the event loop)."""
    return Writer(idx, rec)


def write(writer: Writer, index: int, label: int, data: bytes) -> None:
    """Append one record: IRHeader(flag 0, label, id = index) followed by the image bytes."""
    writer.write_idx(index, pack(label, index, data))


def write_record(out: BinaryIO, payload: bytes) -> int:
    """dmlc's WriteRecord; returns the bytes written."""
    size = len(payload)
    if size >= 1 << 29:
        raise ValueError("a RecordIO record must be under 512 MB")
    written, start, i = 0, 0, payload.find(MAGIC_BYTES)
    while i != -1 and i + 4 <= (size >> 2) << 2:
        if i % 4 == 0:
            out.write(FRAME.pack(MAGIC, (1 if start == 0 else 2) << 29 | (i - start)))
            out.write(payload[start:i])
            written += FRAME.size + i - start
            start = i + 4
            i = payload.find(MAGIC_BYTES, start)
        else:
            i = payload.find(MAGIC_BYTES, i + 1)
    out.write(FRAME.pack(MAGIC, (3 if start else 0) << 29 | (size - start)))
    out.write(payload[start:])
    pad = -size % 4
    out.write(b"\0" * pad)
    return written + FRAME.size + size - start + pad


def pack(label: int, index: int, image: bytes) -> bytes:
    """`mx.recordio.pack(IRHeader(0, float(label), index, 0), image)`."""
    return HEADER.pack(0, float(label), index, 0) + image


def read_index(idx: str | Path) -> list[tuple[int, int]]:
    """An .idx file's (key, offset) pairs in key order (the order the preloading path reads)."""
    pairs = []
    with open(idx, encoding="ascii") as f:
        for line in f:
            if line.strip():
                key, offset = line.split("\t")
                pairs.append((int(key), int(offset)))
    return sorted(pairs)


def read_record(fd: int, offset: int, span: int = 0) -> bytes:
    """The record at `offset`, its parts joined as dmlc's reader joins them (a record holding
    the marker at an aligned place is written in parts, the marker dropped between them).
    `span`: the bytes from `offset` to the next record, read at once; 0 = unknown."""
    buffer = os.pread(fd, span, offset) if span else b""
    parts, at = [], 0  # `at`: where the next part's head is, from `offset`
    while True:
        head = _read(fd, buffer, offset, at, FRAME.size)
        magic, word = FRAME.unpack(head)
        if magic != MAGIC:
            raise ValueError(f"no record marker at byte {offset + at}")
        flag, length = word >> 29, word & LENGTH_MASK
        parts.append(_read(fd, buffer, offset, at + FRAME.size, length))
        at += FRAME.size + length + (-length % 4)
        if flag in (0, 3):  # whole record, or its last part
            return parts[0] if len(parts) == 1 else MAGIC_BYTES.join(parts)


def _read(fd: int, buffer: bytes, offset: int, at: int, size: int) -> bytes:
    """`size` bytes at `offset + at`: from `buffer` when it holds them, else from the file."""
    data = buffer[at : at + size] if at + size <= len(buffer) else os.pread(fd, size, offset + at)
    if len(data) < size:
        raise ValueError(f"the file ends inside a record at byte {offset}")
    return data


def unpack(record: bytes) -> tuple[float, bytes]:
    """(label, image bytes) of a record: what follows MXNet's IRHeader (and its label array,
    if any; its first value is then the label)."""
    if len(record) < HEADER.size:
        raise ValueError("the record is shorter than its header")
    flag, label, _, _ = HEADER.unpack_from(record)
    if flag > 0 and len(record) >= HEADER.size + 4:
        (label,) = struct.unpack_from("<f", record, HEADER.size)
    return label, record[HEADER.size + 4 * flag :]


def record_image(record: bytes) -> bytes:
    """A record's image bytes (its header and label array skipped)."""
    return unpack(record)[1]


def read_label(fd: int, offset: int) -> int:
    """The class of the record at `offset`, from its header alone (no image bytes read)."""
    head = os.pread(fd, FRAME.size + HEADER.size + 4, offset)
    if len(head) < FRAME.size + HEADER.size:
        raise ValueError(f"the file ends inside a record at byte {offset}")
    magic, _ = FRAME.unpack_from(head)
    if magic != MAGIC:
        raise ValueError(f"no record marker at byte {offset}")
    flag, label, _, _ = HEADER.unpack_from(head, FRAME.size)
    if flag > 0:  # a label array follows the header: its first value is the class
        (label,) = struct.unpack_from("<f", head, FRAME.size + HEADER.size)
    return int(label)
