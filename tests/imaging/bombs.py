"""Hostile inputs made on the fly and cheaply: a decompression-bomb PNG and a zip bomb.

Both are written by hand (zlib streaming, raw zip records) so that making them never holds
the expanded bytes in memory: the PNG declares 10000×10000 16-bit pixels (200 MB decoded)
in about 200 KB, the zip holds a 2 GiB member of zeros in about 2 MB.
"""

from __future__ import annotations

import struct
import tarfile
import zlib
from pathlib import Path

MIB = 1 << 20


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(width: int = 10_000, height: int = 10_000, bit_depth: int = 16) -> bytes:
    """A valid grayscale PNG of zeros, compressed row by row (never the whole image at once)."""
    row = bytes(1 + width * bit_depth // 8)  # filter byte 0, then the row's zero samples
    z = zlib.compressobj(9)
    idat = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    header = struct.pack(">IIBBBBB", width, height, bit_depth, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


def _zeros_deflated(mib: int) -> bytes:
    """Raw deflate of `mib` MiB of zeros: one full-flushed block repeated (a full flush resets
    the history, so each copy decodes alone) and a final empty block."""
    z = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = z.compress(bytes(MIB)) + z.flush(zlib.Z_FULL_FLUSH)
    return block * mib + z.flush(zlib.Z_FINISH)


def zip_bomb(
    path: Path, mib: int = 2048, declared: int | None = None, name: str = "a/zeros.png"
) -> Path:
    """A zip whose one member expands to `mib` MiB of zeros; its headers say `declared` bytes
    (default the truth). The CRC is left 0: a reader that expands the member must be stopped
    by its size limit long before the CRC check at the end."""
    data = _zeros_deflated(mib)
    size = mib * MIB if declared is None else declared
    if size >= 0xFFFFFFFF or len(data) >= 0xFFFFFFFF:
        raise ValueError("keep the member under 4 GiB (no zip64 records written)")
    encoded = name.encode()
    # version, flags, method 8 (deflate), time, date, crc, sizes, name length, extra length
    fields = struct.pack("<HHHHHIIIHH", 20, 0, 8, 0, 0x21, 0, len(data), size, len(encoded), 0)
    local = b"PK\x03\x04" + fields + encoded
    central = (
        b"PK\x01\x02"
        + struct.pack("<H", 20)  # made by
        + fields
        + struct.pack("<HHHII", 0, 0, 0, 0, 0)  # comment, disk, internal/external attrs, offset
        + encoded
    )
    end = b"PK\x05\x06" + struct.pack(
        "<HHHHIIH", 0, 0, 1, 1, len(central), len(local) + len(data), 0
    )
    path.write_bytes(local + data + central + end)
    return path


def tar_bomb(path: Path, mib: int = 2048, name: str = "a/zeros.png") -> Path:
    """A tar.gz whose one member holds `mib` MiB of zeros (the tar header tells the truth; the
    gzip stream is what multiplies it). The gzip trailer's CRC is left 0, as in `zip_bomb`."""
    info = tarfile.TarInfo(name)
    info.size = mib * MIB
    z = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = z.compress(info.tobuf(format=tarfile.PAX_FORMAT)) + z.flush(zlib.Z_FULL_FLUSH)
    zeros = z.compress(bytes(MIB)) + z.flush(zlib.Z_FULL_FLUSH)
    tail = z.compress(bytes(2 * tarfile.BLOCKSIZE)) + z.flush(zlib.Z_FINISH)
    gzip_header = b"\x1f\x8b\x08\x00" + bytes(4) + b"\x02\xff"
    trailer = struct.pack("<II", 0, (mib * MIB) & 0xFFFFFFFF)
    path.write_bytes(gzip_header + head + zeros * mib + tail + trailer)
    return path
