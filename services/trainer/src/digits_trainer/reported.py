"""Files a training child reports: opened only inside its job's `work/`, never through a link.

The child writes `work/`; whatever it names there is untrusted: a path with `..`, an absolute
path outside the folder, a symlink (in any component) or anything but a regular file of
bounded size is refused. Each component is opened relative to the one before with O_NOFOLLOW,
so swapping a folder for a symlink between a check and the open does not help either.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from digits_trainer.confine import JOB, WORK


class Refused(Exception):
    """A reported path the parent will not touch (the message says why)."""


def components(reported: str) -> list[str]:
    """The path's parts below `work/`: relative to the job folder, or absolute under /job."""
    path = PurePosixPath(reported)
    if path.is_absolute():
        if not path.is_relative_to(JOB):
            raise Refused(f"{reported!r} is outside the job's folder")
        path = path.relative_to(JOB)
    parts = list(path.parts)
    if not parts or parts[0] != WORK or len(parts) < 2:
        raise Refused(f"{reported!r} is not in the job's {WORK}/ folder")
    if any(p in ("", ".", "..") or "\0" in p for p in parts[1:]):
        raise Refused(f"{reported!r} is not a plain path")
    return parts[1:]


def host_path(folder: Path, reported: str) -> str:
    """Where a path the child names lies on this node (for messages only: nothing is opened);
    the child's own words when it is not inside its folder."""
    path = PurePosixPath(reported)
    if path.is_absolute():
        if not path.is_relative_to(JOB):
            return reported
        path = path.relative_to(JOB)
    if ".." in path.parts:
        return reported
    return str(folder / path)


@contextlib.contextmanager
def parent_dir(folder: Path, reported: str) -> Iterator[tuple[int, str]]:
    """(an fd of the reported file's folder, the file's name), walked without following links."""
    parts = components(reported)
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(folder / WORK, flags)
    try:
        for part in parts[:-1]:
            try:
                inner = os.open(part, flags, dir_fd=fd)
            except OSError as e:
                raise Refused(f"{reported!r}: {part} is not a folder ({e.strerror})") from None
            os.close(fd)
            fd = inner
        yield fd, parts[-1]
    finally:
        os.close(fd)


@contextlib.contextmanager
def open_reported(folder: Path, reported: str, max_bytes: int) -> Iterator[str]:
    """A path (`/proc/self/fd/N`) to read the reported regular file by, while it is open."""
    with parent_dir(folder, reported) as (dir_fd, name):
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
        except OSError as e:
            raise Refused(f"{reported!r} cannot be opened ({e.strerror})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise Refused(f"{reported!r} is not a regular file")
        if info.st_size > max_bytes:
            raise Refused(f"{reported!r} has {info.st_size} bytes, over {max_bytes}")
        yield f"/proc/self/fd/{fd}"
    finally:
        os.close(fd)


def remove_reported(folder: Path, reported: str) -> None:
    """Unlink the reported file (a symlink itself, never its target), then its folder if that
    is empty now and not `work/` itself; quietly, when either is gone or refused."""
    with contextlib.suppress(Refused, OSError), parent_dir(folder, reported) as (dir_fd, name):
        os.unlink(name, dir_fd=dir_fd)
    with contextlib.suppress(Refused, OSError):
        inner = PurePosixPath(WORK, *components(reported)[:-1])
        if inner != PurePosixPath(WORK):
            with parent_dir(folder, str(inner)) as (dir_fd, name):
                os.rmdir(name, dir_fd=dir_fd)  # rmdir never follows a symlink
