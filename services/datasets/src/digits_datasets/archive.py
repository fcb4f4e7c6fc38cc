"""Unpack an uploaded zip or tar(.gz/.bz2/.xz) of class folders, refusing anything hostile
(the shared rules of digits_proto.runtime.extract_archive), and find the class folders in it."""

from __future__ import annotations

import os
from pathlib import Path

from digits_datasets.errors import BuildError
from digits_proto.runtime import MIN_FREE, ArchiveRefused, extract_archive

SKIPPED_DIRS = ("__MACOSX",)


def extract(
    path: Path,
    dest: Path,
    max_bytes: int,
    max_members: int = 1_000_000,
    min_free: int = MIN_FREE,
) -> Path:
    """Unpack `path` into `dest`; returns the folder holding the class folders."""
    try:
        extract_archive(
            path, dest, max_bytes, max_members, "The upload is not a zip or tar archive", min_free
        )
    except ArchiveRefused as e:
        raise BuildError(str(e)) from e
    return class_root(dest)


def class_root(dest: Path) -> Path:
    """`dest`, or its single top folder when the archive wrapped the class folders in one."""
    entries = [
        e for e in os.scandir(dest) if e.name not in SKIPPED_DIRS and not e.name.startswith(".")
    ]
    if len(entries) == 1 and entries[0].is_dir(follow_symlinks=False):
        inner = Path(entries[0].path)
        if sum(1 for e in os.scandir(inner) if e.is_dir(follow_symlinks=False)) >= 2:
            return inner
    return dest
