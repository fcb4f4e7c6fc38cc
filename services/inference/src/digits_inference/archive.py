"""Classify many from an uploaded archive: list its images safely, then extract them to disk.

zip, tar, tar.gz/tgz, tar.bz2. A member named absolutely or with `..`, a link, a device or any
other non-regular file refuses the whole archive; so do more than `max_members` members or
more than `max_expanded` bytes once extracted (summed from the headers first, then counted
while copying), and an extraction that would leave the data disk under `min_free` bytes. Images are the regular files with an image extension (hidden files and `__MACOSX`
skipped); the folder that holds one, when named like a label, is its ground truth.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from digits_inference.many import Entry
from digits_proto.runtime import MIN_FREE, ArchiveRefused, check_free_space, safe_member_path

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".ppm", ".pgm", ".tif", ".tiff")
COPY_CHUNK = 1 << 20


@dataclass(frozen=True)
class Limits:
    """How much one archive may hold."""

    max_members: int = 100_000
    max_expanded: int = 2 << 30  # bytes, all images together
    max_image: int = 32 << 20  # bytes, one image
    min_free: int = MIN_FREE  # bytes the data disk keeps free whatever the archive holds


@dataclass(frozen=True)
class Member:
    """One image in the archive: its safe relative name and its declared size."""

    name: str
    size: int


def safe_name(name: str) -> str:
    """The member's name as a relative POSIX path, or ArchiveRefused (absolute, `..`, drive)."""
    return "/".join(p for p in safe_member_path(name).parts if p not in ("", "."))


def is_image(name: str) -> bool:
    """An image file by its extension, not hidden, not macOS resource-fork clutter."""
    parts = name.split("/")
    if any(p.startswith(".") for p in parts) or "__MACOSX" in parts:
        return False
    return name.lower().endswith(IMAGE_EXTENSIONS)


def _zip_members(z: zipfile.ZipFile) -> Iterator[tuple[str, int, bool]]:
    for info in z.infolist():
        mode = info.external_attr >> 16
        if info.is_dir():
            yield info.filename, 0, False
            continue
        kind = stat.S_IFMT(mode)  # 0 when the zip records no Unix file type
        if kind and kind != stat.S_IFREG:  # a symlink or device stored by a Unix zip
            raise ArchiveRefused(f"Not a regular file: {info.filename!r} (links are refused)")
        yield info.filename, info.file_size, True


def _tar_members(t: tarfile.TarFile) -> Iterator[tuple[str, int, bool]]:
    for info in t:
        if info.isdir():
            yield info.name, 0, False
            continue
        if not info.isreg():
            raise ArchiveRefused(f"Not a regular file: {info.name!r} (links are refused)")
        yield info.name, info.size, True


def _open(path: Path) -> zipfile.ZipFile | tarfile.TarFile:
    if zipfile.is_zipfile(path):
        return zipfile.ZipFile(path)
    try:
        return tarfile.open(path, "r:*")
    except (tarfile.TarError, OSError, EOFError) as e:
        raise ArchiveRefused("Not a zip or tar archive (zip, tar, tar.gz, tar.bz2)") from e


def list_images(path: Path, limits: Limits) -> list[Member]:
    """Check every member and list the images (in archive order); ArchiveRefused if unsafe."""
    images: list[Member] = []
    count = 0
    declared = 0
    try:
        with _open(path) as archive:
            members = (
                _zip_members(archive)
                if isinstance(archive, zipfile.ZipFile)
                else _tar_members(archive)
            )
            for raw, size, is_file in members:
                count += 1
                if count > limits.max_members:
                    raise ArchiveRefused(f"Too many members (the limit is {limits.max_members})")
                name = safe_name(raw)
                if not is_file or not is_image(name):
                    continue
                declared += size
                if declared > limits.max_expanded:
                    raise ArchiveRefused(
                        f"The images expand to more than {limits.max_expanded} bytes"
                    )
                images.append(Member(name, size))
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as e:
        raise ArchiveRefused(f"Unreadable archive: {e}") from e
    return images


def _copy(source: BinaryIO, target: Path, budget: int, limits: Limits) -> int:
    """Copy at most `budget` bytes (and one image's limit); the bytes actually written."""
    written = 0
    with open(target, "wb") as out:
        while chunk := source.read(COPY_CHUNK):
            written += len(chunk)
            if written > budget:
                raise ArchiveRefused(f"The images expand to more than {limits.max_expanded} bytes")
            if written > limits.max_image:
                break  # truncated on purpose: the image is refused as too large below
            out.write(chunk)
    return written


def extract(path: Path, folder: Path, limits: Limits) -> list[Member]:
    """Extract the images (only) under `folder`; members checked again as they are read."""
    listed = list_images(path, limits)
    wanted = {m.name for m in listed}
    folder.mkdir(parents=True, exist_ok=True)
    check_free_space(folder, sum(min(m.size, limits.max_image) for m in listed), limits.min_free)
    root = folder.resolve()
    budget = limits.max_expanded
    done: list[Member] = []
    with _open(path) as archive:
        if isinstance(archive, zipfile.ZipFile):
            sources = ((i.filename, i) for i in archive.infolist() if not i.is_dir())
        else:
            sources = ((i.name, i) for i in archive if i.isreg())
        for raw, info in sources:
            name = safe_name(raw)
            if name not in wanted:
                continue
            target = root / name
            if not target.resolve().is_relative_to(root):  # belt and braces after safe_name
                raise ArchiveRefused(f"Unsafe member name: {raw!r}")
            target.parent.mkdir(parents=True, exist_ok=True)
            check_free_space(folder, 0, limits.min_free)  # other writers share the disk
            if isinstance(archive, zipfile.ZipFile):
                stream: BinaryIO | None = archive.open(info)  # type: ignore[arg-type]
            else:
                stream = archive.extractfile(info)  # type: ignore[arg-type]
            if stream is None:
                continue
            with stream:
                size = _copy(stream, target, budget, limits)
            budget -= min(size, limits.max_image)
            done.append(Member(name, size))
    return done


def entries(
    members: Sequence[Member], folder: Path, labels: Sequence[str], limits: Limits
) -> list[Entry]:
    """Classify-many entries for extracted images; the holding folder's name is the truth."""
    index = {label: i for i, label in enumerate(labels)}
    out = []
    for number, member in enumerate(members, start=1):
        parent = member.name.rsplit("/", 1)[0] if "/" in member.name else ""
        label = index.get(parent.rsplit("/", 1)[-1]) if parent else None
        error = ""
        if member.size > limits.max_image:
            error = f"File too large: {member.size} bytes (the limit is {limits.max_image})"
        resolved = None if error else os.path.join(folder, member.name)
        out.append(Entry(number, member.name, resolved, label, error))
    return out


def remove(folder: Path) -> None:
    """Delete an extraction folder (best effort)."""
    shutil.rmtree(folder, ignore_errors=True)
