"""Unpack an uploaded zip or tar(.gz/.bz2/.xz) safely: the one copy every service uses.

Refused (the whole archive, naming the member): absolute paths, `..`, drive letters, symlinks and
hardlinks, devices and FIFOs, more than `max_members` members, and more than `max_bytes` once
expanded (counted while writing, so a member whose header lies about its size is caught too).
Nothing is ever written outside `dest`, and an existing entry is never followed or overwritten.
"""

from __future__ import annotations

import stat
import tarfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import IO

BLOCK = 1024 * 1024


class ArchiveRefused(ValueError):
    """The archive is unreadable or unsafe; the message names the member and why."""


def safe_member_path(name: str) -> PurePosixPath:
    """A member's relative path, or ArchiveRefused if it could leave the destination."""
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or name.startswith(("/", "\\")) or (path.parts and ":" in path.parts[0]):
        raise ArchiveRefused(f"Archive member {name!r} has an absolute path")
    if ".." in path.parts:
        raise ArchiveRefused(f"Archive member {name!r} points outside the archive (..)")
    return path


class _Budget:
    """Members and bytes the archive may still use."""

    def __init__(self, max_bytes: int, max_members: int):
        self.left, self.members = max_bytes, max_members

    def member(self, name: str) -> None:
        self.members -= 1
        if self.members < 0:
            raise ArchiveRefused(f"Archive has too many members (at {name!r})")

    def spend(self, n: int, name: str) -> None:
        self.left -= n
        if self.left < 0:
            raise ArchiveRefused(f"Archive expands past the size limit (at {name!r})")


def _write(src: IO[bytes], target: Path, name: str, budget: _Budget) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "xb") as out:  # "x": never follow or overwrite an existing entry
        while block := src.read(BLOCK):
            budget.spend(len(block), name)
            out.write(block)


def _extract_zip(path: Path, dest: Path, budget: _Budget) -> None:
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            budget.member(info.filename)
            rel = safe_member_path(info.filename)
            kind = stat.S_IFMT(info.external_attr >> 16)  # 0: no Unix type stored (plain file)
            if kind == stat.S_IFLNK:
                raise ArchiveRefused(f"Archive member {info.filename!r} is a symbolic link")
            if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
                raise ArchiveRefused(f"Archive member {info.filename!r} is a special file")
            if info.is_dir() or not rel.parts:
                continue
            with zf.open(info) as src:
                _write(src, dest.joinpath(*rel.parts), info.filename, budget)


def _extract_tar(path: Path, dest: Path, budget: _Budget) -> None:
    with tarfile.open(path, "r:*") as tf:
        for member in tf:  # streamed: members are read one after another
            budget.member(member.name)
            rel = safe_member_path(member.name)
            if member.issym() or member.islnk():
                raise ArchiveRefused(f"Archive member {member.name!r} is a link")
            if member.isdir() or not rel.parts:
                continue
            if not member.isfile():
                raise ArchiveRefused(f"Archive member {member.name!r} is a special file")
            src = tf.extractfile(member)
            if src is not None:
                _write(src, dest.joinpath(*rel.parts), member.name, budget)


def extract_archive(
    path: Path, dest: Path, max_bytes: int, max_members: int, not_an_archive: str
) -> None:
    """Unpack the zip or tar at `path` into `dest`; ArchiveRefused (with `not_an_archive` as the
    message when it is neither) if anything is unsafe or unreadable."""
    dest.mkdir(parents=True, exist_ok=True)
    budget = _Budget(max_bytes, max_members)
    try:
        if zipfile.is_zipfile(path):
            _extract_zip(path, dest, budget)
        elif tarfile.is_tarfile(path):
            _extract_tar(path, dest, budget)
        else:
            raise ArchiveRefused(not_an_archive)
    except ArchiveRefused:
        raise
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, ValueError) as e:
        raise ArchiveRefused(f"The archive cannot be read: {e}") from e
