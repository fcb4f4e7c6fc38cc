"""MXNet RecordIO records on disk: the byte format dmlc writes, and a record's image."""

from __future__ import annotations

import io
import os
import struct

import numpy as np
from PIL import Image

MAGIC = 0xCED7230A  # dmlc RecordIO's record marker
_MAGIC_BYTES = struct.pack("<I", MAGIC)
_RECORD_HEAD = struct.Struct("<II")  # magic, (continuation flag << 29) | length
_IR_HEAD = struct.Struct("<IfQQ")  # MXNet's IRHeader: flag, label, id, id2
_LENGTH_MASK = (1 << 29) - 1


class BadRecord(ValueError):
    """A record that does not decode to an image of the dataset's shape."""


def read_index(idx: str) -> list[tuple[int, int]]:
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
        head = _read(fd, buffer, offset, at, _RECORD_HEAD.size)
        magic, word = _RECORD_HEAD.unpack(head)
        if magic != MAGIC:
            raise ValueError(f"no record marker at byte {offset + at}")
        flag, length = word >> 29, word & _LENGTH_MASK
        parts.append(_read(fd, buffer, offset, at + _RECORD_HEAD.size, length))
        at += _RECORD_HEAD.size + length + (-length % 4)
        if flag in (0, 3):  # whole record, or its last part
            return parts[0] if len(parts) == 1 else _MAGIC_BYTES.join(parts)


def _read(fd: int, buffer: bytes, offset: int, at: int, size: int) -> bytes:
    """`size` bytes at `offset + at`: from `buffer` when it holds them, else from the file."""
    data = buffer[at : at + size] if at + size <= len(buffer) else os.pread(fd, size, offset + at)
    if len(data) < size:
        raise ValueError(f"the file ends inside a record at byte {offset}")
    return data


def record_image(record: bytes) -> bytes:
    """A record's image bytes: what follows MXNet's IRHeader (and its label array, if any)."""
    if len(record) < _IR_HEAD.size:
        raise ValueError("the record is shorter than its header")
    (flag,) = struct.unpack_from("<I", record)
    return record[_IR_HEAD.size + 4 * flag :]


def read_label(fd: int, offset: int) -> int:
    """The class of the record at `offset`, from its header alone (no image bytes read)."""
    head = os.pread(fd, _RECORD_HEAD.size + _IR_HEAD.size + 4, offset)
    if len(head) < _RECORD_HEAD.size + _IR_HEAD.size:
        raise ValueError(f"the file ends inside a record at byte {offset}")
    magic, _ = _RECORD_HEAD.unpack_from(head)
    if magic != MAGIC:
        raise ValueError(f"no record marker at byte {offset}")
    flag, label, _, _ = _IR_HEAD.unpack_from(head, _RECORD_HEAD.size)
    if flag > 0:  # a label array follows the header: its first value is the class
        (label,) = struct.unpack_from("<f", head, _RECORD_HEAD.size + _IR_HEAD.size)
    return int(label)


def decode_image(payload: bytes, encoding: str, shape: tuple[int, int, int]) -> np.ndarray:
    """One record's bytes as a C×H×W uint8 array."""
    channels, height, width = shape
    if encoding == "none":
        pixels = np.frombuffer(payload, dtype=np.uint8).reshape(height, width, channels)
    else:
        try:
            with Image.open(io.BytesIO(payload)) as img:
                pixels = np.asarray(img.convert("L" if channels == 1 else "RGB"))
        except OSError:  # PIL's message would name an anonymous BytesIO
            raise ValueError(f"not a readable {encoding} image") from None
        if pixels.ndim == 2:
            pixels = pixels[:, :, None]
    if pixels.shape != (height, width, channels):
        raise ValueError(f"image is {pixels.shape}, the dataset says {(height, width, channels)}")
    return pixels.transpose(2, 0, 1)
