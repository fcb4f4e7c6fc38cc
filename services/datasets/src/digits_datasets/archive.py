"""Unpack an uploaded zip or tar(.gz/.bz2/.xz) of class folders, refusing anything hostile.

Refused (the whole archive, naming the member): absolute paths, `..`, symlinks and hardlinks,
devices and FIFOs, more than `max_members` members, and more than `max_bytes` once expanded
(counted while writing, so a member whose header lies about its size is caught too). Nothing
is ever written outside `dest`.
"""

from __future__ import annotations

import os
import stat
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import IO

from digits_datasets.errors import BuildError

BLOCK = 1024 * 1024
SKIPPED_DIRS = ("__MACOSX",)


def _safe_name(name: str) -> PurePosixPath:
    """The member's relative path, or a BuildError if it could leave the destination."""
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or name.startswith(("/", "\\")) or (path.parts and ":" in path.parts[0]):
        raise BuildError(f"Archive member {name!r} has an absolute path")
    if ".." in path.parts:
        raise BuildError(f"Archive member {name!r} points outside the archive (..)")
    return path


class _Budget:
    def __init__(self, max_bytes: int, max_members: int):
        self.left, self.members = max_bytes, max_members

    def member(self, name: str) -> None:
        self.members -= 1
        if self.members < 0:
            raise BuildError(f"Archive has too many members (at {name!r})")

    def spend(self, n: int, name: str) -> None:
        self.left -= n
        if self.left < 0:
            raise BuildError(f"Archive expands past the size limit (at {name!r})")


def _write(src: IO[bytes], target: Path, name: str, budget: _Budget) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "xb") as out:  # "x": never follow or overwrite an existing entry
        while block := src.read(BLOCK):
            budget.spend(len(block), name)
            out.write(block)


def _zip_members(zf: zipfile.ZipFile) -> Iterator[tuple[zipfile.ZipInfo, str]]:
    for info in zf.infolist():
        kind = stat.S_IFMT(info.external_attr >> 16)  # 0: no Unix type stored (plain file)
        if kind == stat.S_IFLNK:
            yield info, "a symbolic link"
        elif kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            yield info, "a special file"
        else:
            yield info, ""


def _extract_zip(path: Path, dest: Path, budget: _Budget) -> None:
    with zipfile.ZipFile(path) as zf:
        for info, bad in _zip_members(zf):
            budget.member(info.filename)
            rel = _safe_name(info.filename)
            if bad:
                raise BuildError(f"Archive member {info.filename!r} is {bad}")
            if info.is_dir() or not rel.parts:
                continue
            with zf.open(info) as src:
                _write(src, dest.joinpath(*rel.parts), info.filename, budget)


def _extract_tar(path: Path, dest: Path, budget: _Budget) -> None:
    with tarfile.open(path, "r:*") as tf:
        for member in tf:  # streamed: members are read one after another
            budget.member(member.name)
            rel = _safe_name(member.name)
            if member.issym() or member.islnk():
                raise BuildError(f"Archive member {member.name!r} is a link")
            if member.isdir() or not rel.parts:
                continue
            if not member.isfile():
                raise BuildError(f"Archive member {member.name!r} is a special file")
            src = tf.extractfile(member)
            if src is not None:
                _write(src, dest.joinpath(*rel.parts), member.name, budget)


def extract(path: Path, dest: Path, max_bytes: int, max_members: int = 1_000_000) -> Path:
    """Unpack `path` into `dest`; returns the folder holding the class folders."""
    dest.mkdir(parents=True, exist_ok=True)
    budget = _Budget(max_bytes, max_members)
    try:
        if zipfile.is_zipfile(path):
            _extract_zip(path, dest, budget)
        elif tarfile.is_tarfile(path):
            _extract_tar(path, dest, budget)
        else:
            raise BuildError("The upload is not a zip or tar archive")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as e:
        raise BuildError(f"The archive cannot be read: {e}") from e
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
