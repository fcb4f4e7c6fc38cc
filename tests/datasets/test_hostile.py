"""Hostile input through the whole build: bad files are listed with reasons, the build goes on."""

from __future__ import annotations

import builtins
import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from digits_datasets.folders import list_images
from digits_datasets.settings import Settings
from digits_proto.datasets import DatasetBuilt, DatasetFailed, DatasetFolderParsed

from .conftest import make_folder
from .test_service import create, fetch, read_records, wait_terminal


def bomb_png(width: int = 30_000, height: int = 30_000) -> bytes:
    """A tiny PNG whose header claims a huge image (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def png(image: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG", **kw)
    return buf.getvalue()


def jpeg(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def hostile_files(folder: Path) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """(files that must fail, odd files that must load) written into `folder`."""
    rng = np.random.default_rng(1)
    photo = Image.fromarray(rng.integers(0, 255, (40, 60, 3), dtype=np.uint8))
    good_jpeg, good_png = jpeg(photo), png(photo)
    palette = Image.new("P", (8, 8), 1)
    palette.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    bad = {
        "truncated.jpg": good_jpeg[: len(good_jpeg) // 3],
        "corrupt.png": good_png[:40] + b"\xde\xad" * 50 + good_png[140:],
        "zero-byte.jpg": b"",
        "text.jpg": b"hello, I am not a picture\n",
        "bomb.png": bomb_png(),
    }
    odd = {
        "one-pixel.png": png(Image.new("RGB", (1, 1), (9, 9, 9))),
        "wide-10000x40.png": png(Image.new("L", (10_000, 40), 200)),
        "cmyk.jpg": jpeg(Image.new("CMYK", (16, 16), (0, 255, 255, 0))),
        "palette-transparent.png": png(palette, transparency=0),
        "sixteen-bit.png": png(Image.fromarray(np.full((8, 8), 40_000, np.uint16))),
        "ünïcödé 名前 with spaces.JPG": good_jpeg,
    }
    for name, data in {**bad, **odd}.items():
        (folder / name).write_bytes(data)
    return bad, odd


async def test_hostile_files_are_listed_with_reasons_and_the_rest_is_built(
    service: Settings, nc, js, images: Path, tmp_path: Path
) -> None:
    """Corrupt/zero/text/bomb files are errors with reasons; odd but valid images are packed."""
    folder = make_folder(images / "hostile", {"a_cat": 4, "b": 4})
    (folder / "empty_class").mkdir()
    bad, odd = hostile_files(folder / "a_cat")
    os.symlink(folder / "a_cat" / "nowhere.png", folder / "a_cat" / "dangling.png")
    os.mkfifo(folder / "b" / "pipe.jpg")  # would block a reader forever
    os.symlink(folder / "b", folder / "b" / "loop")  # a symlink loop

    accepted, rejected = await create(nc, folder, folder_pct_val=0)
    assert rejected is None and accepted is not None
    events = await wait_terminal(js, accepted.id)
    built = events[-1]
    assert isinstance(built, DatasetBuilt), built
    parsed = next(e for e in events if isinstance(e, DatasetFolderParsed))
    assert built.labels == ["a_cat", "b"]  # the empty class is dropped ...
    assert any(
        "empty_class" in w and "no images" in w for w in parsed.warnings
    )  # ... with a warning
    assert any("pipe.jpg" in w and "not a regular file" in w for w in parsed.warnings)

    reasons = {Path(e.path).name: e.reason for e in built.errors}
    assert set(reasons) == {*bad, "dangling.png"}
    assert "too large" in reasons["bomb.png"]
    assert all(reason for reason in reasons.values())
    assert {e.label for e in built.errors} == {"a_cat"}
    train = built.splits[0]
    assert train.class_counts == [4 + len(odd), 4]  # b's 4 images, none twice despite the loop
    assert train.class_error_counts == [len(bad) + 1, 0]
    assert train.error_count == len(bad) + 1

    cache = tmp_path / "cache"
    records = read_records(await fetch(js, train.rec, cache), await fetch(js, train.idx, cache))
    assert all(Image.open(io.BytesIO(d)).size == (16, 16) for _, d in records)


async def test_a_class_of_only_broken_files_fails_naming_the_cause(
    service: Settings, nc, js, images: Path
) -> None:
    """When no training image of any class can be read, the job fails and says so."""
    folder = images / "all-bad"
    for name in ("a", "b"):
        (folder / name).mkdir(parents=True)
        for i in range(3):
            (folder / name / f"{i}.jpg").write_bytes(b"")
    accepted, _ = await create(nc, folder, folder_pct_val=0)
    assert accepted is not None
    failed = (await wait_terminal(js, accepted.id))[-1]
    assert isinstance(failed, DatasetFailed)
    assert "No training image could be loaded" in failed.error


def test_unreadable_file_is_listed_and_fails_to_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file without read permission is found by the scan and refused by the loader."""
    from digits_datasets.packing import EncodeSpec, process_chunk

    path = tmp_path / "c" / "locked.png"
    path.parent.mkdir()
    path.write_bytes(png(Image.new("RGB", (4, 4))))
    path.chmod(0)
    files, _ = list_images(str(path.parent), [str(tmp_path)])
    assert files == [str(path)]
    if os.geteuid() == 0:  # root reads any file: make open() answer as for anyone else
        real_open = builtins.open

        def guarded(file, *args, **kw):
            if str(file) == str(path):
                raise PermissionError(13, "Permission denied", str(file))
            return real_open(file, *args, **kw)

        monkeypatch.setattr(builtins, "open", guarded)
    result = process_chunk([(str(path), 0)], EncodeSpec(width=4, height=4, channels=3), False, 0)
    assert result.records == [] and "Permission denied" in result.errors[0][2]
