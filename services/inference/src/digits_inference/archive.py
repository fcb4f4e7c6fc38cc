"""Classify many from an uploaded archive: list its images safely, then extract them to disk.

The members are walked, checked and written by the one archive extractor every service uses
(`digits_proto.runtime.extract_archive`/`list_archive`: no absolute or `..` names, links,
devices, more than `max_members` members, more than `max_expanded` bytes or a disk left under
`min_free`). Here only the images are kept: regular files with an image extension (hidden
files and `__MACOSX` skipped), each up to `max_image` bytes; the folder that holds one, when
named like a label, is its ground truth.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from digits_inference.many import Entry
from digits_proto.runtime import (
    MIN_FREE,
    ArchiveRefused,
    Member,
    check_free_space,
    extract_archive,
    list_archive,
)

__all__ = [
    "ArchiveRefused",
    "Limits",
    "Member",
    "check_free_space",
    "entries",
    "extract",
    "is_image",
    "list_images",
    "remove",
]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".ppm", ".pgm", ".tif", ".tiff")
NOT_AN_ARCHIVE = "Not a zip or tar archive (zip, tar, tar.gz, tar.bz2)"


@dataclass(frozen=True)
class Limits:
    """How much one archive may hold."""

    max_members: int = 100_000
    max_expanded: int = 2 << 30  # bytes, all images together
    max_image: int = 32 << 20  # bytes, one image
    min_free: int = MIN_FREE  # bytes the data disk keeps free whatever the archive holds


def is_image(name: str) -> bool:
    """An image file by its extension, not hidden, not macOS resource-fork clutter."""
    parts = name.split("/")
    if any(p.startswith(".") for p in parts) or "__MACOSX" in parts:
        return False
    return name.lower().endswith(IMAGE_EXTENSIONS)


def _image(rel: PurePosixPath) -> bool:
    return is_image(rel.as_posix())


def list_images(path: Path, limits: Limits) -> list[Member]:
    """Check every member and list the images (in archive order); ArchiveRefused if unsafe."""
    return list_archive(path, limits.max_expanded, limits.max_members, NOT_AN_ARCHIVE, keep=_image)


def extract(path: Path, folder: Path, limits: Limits) -> list[Member]:
    """Extract the images (only) under `folder`; an image past `max_image` is not kept (its
    entry says it is too large)."""
    return extract_archive(
        path,
        folder,
        limits.max_expanded,
        limits.max_members,
        NOT_AN_ARCHIVE,
        min_free=limits.min_free,
        keep=_image,
        max_file=limits.max_image,
    )


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
