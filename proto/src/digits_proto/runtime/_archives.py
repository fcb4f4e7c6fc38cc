"""Unpack an uploaded zip or tar(.gz/.bz2/.xz) safely: the one copy every service uses.

One walk of the members serves every use: `extract_archive` unpacks (all regular files, or only
those `keep` accepts: classify-many's images), `list_archive` checks and lists without writing.
Refused (the whole archive, naming the member or the limit): absolute paths, `..`, drive
letters, symlinks and hardlinks, devices and FIFOs, more than `max_members` members, more than
`max_bytes` once expanded, and an expansion that would leave the disk under `min_free` bytes.
Sizes are checked twice: summed from the member headers before a byte is written, then counted
while writing (a header may lie, and small files take whole blocks), with the disk's free space
read again as members land. Nothing is ever written outside `dest`, an existing entry is never
followed or overwritten, and a refused archive leaves nothing behind.
"""

from __future__ import annotations

import shutil
import stat
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import IO, NamedTuple

BLOCK = 1024 * 1024
FREE_CHECK_EVERY = 16  # blocks written between two reads of the disk's free space
MIN_FREE = 1 << 30  # default free-space floor: an archive never leaves the disk under 1 GiB


class ArchiveRefused(ValueError):
    """The archive is unreadable or unsafe; the message names the member or the limit."""


class Member(NamedTuple):
    """A regular file of the archive: its relative POSIX name, and its size (declared by its
    header when listed, counted when written; over `max_file` it was not kept)."""

    name: str
    size: int


Keep = Callable[[PurePosixPath], bool]


def safe_member_path(name: str) -> PurePosixPath:
    """A member's relative path, or ArchiveRefused if it could leave the destination."""
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or name.startswith(("/", "\\")) or (path.parts and ":" in path.parts[0]):
        raise ArchiveRefused(f"Archive member {name!r} has an absolute path")
    if ".." in path.parts:
        raise ArchiveRefused(f"Archive member {name!r} points outside the archive (..)")
    return path


def check_free_space(folder: Path, needed: int, min_free: int) -> None:
    """ArchiveRefused when writing `needed` more bytes under `folder` would leave its disk
    under `min_free` bytes free."""
    left = shutil.disk_usage(folder).free - needed
    if left < min_free:
        raise ArchiveRefused(
            f"Archive refused: it would leave {max(left, 0)} bytes free on the data disk, "
            f"under the free-space floor of {min_free} bytes"
        )


class _Budget:
    """Members, bytes and free disk space the archive may still use."""

    def __init__(self, dest: Path, max_bytes: int, max_members: int, min_free: int):
        self.dest, self.min_free = dest, min_free
        self.max_bytes, self.max_members = max_bytes, max_members
        self.members = self.declared = self.written = 0

    def member(self, name: str) -> None:
        self.members += 1
        if self.members > self.max_members:
            raise ArchiveRefused(
                f"Archive has too many members (at {name!r}; the limit is {self.max_members})"
            )

    def declare(self, size: int, name: str) -> None:
        """A member's size from its header, before anything is written."""
        self.declared += size
        if self.declared > self.max_bytes:
            raise ArchiveRefused(
                f"Archive expands past the size limit of {self.max_bytes} bytes "
                f"(its headers declare over {self.declared} bytes at {name!r})"
            )

    def check_free(self, needed: int = 0) -> None:
        check_free_space(self.dest, needed, self.min_free)

    def spend(self, n: int, name: str) -> None:
        self.written += n
        if self.written > self.max_bytes:
            raise ArchiveRefused(
                f"Archive expands past the size limit of {self.max_bytes} bytes (at {name!r})"
            )


class _Written:
    """What one extraction created, so that a refusal can remove exactly that."""

    def __init__(self) -> None:
        self.files: list[Path] = []
        self.dirs: list[Path] = []

    def mkdirs(self, folder: Path, root: Path) -> None:
        missing = [p for p in (folder, *folder.parents) if p.is_relative_to(root)]
        for d in reversed(missing):
            if not d.exists():
                d.mkdir()
                self.dirs.append(d)

    def undo(self) -> None:
        for f in reversed(self.files):
            f.unlink(missing_ok=True)
        for d in reversed(self.dirs):
            shutil.rmtree(d, ignore_errors=True)


def _write(
    src: IO[bytes], target: Path, name: str, budget: _Budget, done: _Written, max_file: int
) -> int:
    """Copy one member; the bytes it holds. Past `max_file` (0: no cap) the copy stops and the
    file is removed: the caller reports it as too large."""
    done.mkdirs(target.parent, budget.dest)
    budget.check_free()
    size = 0
    with open(target, "xb") as out:  # "x": never follow or overwrite an existing entry
        done.files.append(target)
        blocks = 0
        while block := src.read(BLOCK):
            budget.spend(len(block), name)
            size += len(block)
            if max_file and size > max_file:
                break
            out.write(block)
            blocks += 1
            if blocks % FREE_CHECK_EVERY == 0:
                budget.check_free()
    if max_file and size > max_file:
        target.unlink()
        done.files.remove(target)
    return size


def _zip_files(
    zf: zipfile.ZipFile, budget: _Budget, keep: Keep | None
) -> list[tuple[zipfile.ZipInfo, PurePosixPath]]:
    """Every member checked from the central directory; the regular files to write."""
    files = []
    for info in zf.infolist():
        budget.member(info.filename)
        rel = safe_member_path(info.filename)
        kind = stat.S_IFMT(info.external_attr >> 16)  # 0: no Unix type stored (plain file)
        if kind == stat.S_IFLNK:
            raise ArchiveRefused(f"Archive member {info.filename!r} is a symbolic link")
        if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise ArchiveRefused(f"Archive member {info.filename!r} is a special file")
        if info.is_dir() or not rel.parts or (keep is not None and not keep(rel)):
            continue
        budget.declare(info.file_size, info.filename)
        files.append((info, rel))
    return files


def _extract_zip(
    path: Path, budget: _Budget, done: _Written, keep: Keep | None, max_file: int
) -> list[Member]:
    written = []
    with zipfile.ZipFile(path) as zf:
        files = _zip_files(zf, budget, keep)
        budget.check_free(budget.declared)
        for info, rel in files:
            with zf.open(info) as src:
                target = budget.dest.joinpath(*rel.parts)
                size = _write(src, target, info.filename, budget, done, max_file)
            written.append(Member(rel.as_posix(), size))
    return written


def _tar_files(
    tf: tarfile.TarFile, budget: _Budget, keep: Keep | None
) -> list[tuple[tarfile.TarInfo, PurePosixPath]]:
    files = []
    for member in tf:  # streamed: the headers are read one after another
        budget.member(member.name)
        rel = safe_member_path(member.name)
        if member.issym() or member.islnk():
            raise ArchiveRefused(f"Archive member {member.name!r} is a link")
        if member.isdir() or not rel.parts:
            continue
        if not member.isfile():
            raise ArchiveRefused(f"Archive member {member.name!r} is a special file")
        if keep is not None and not keep(rel):
            continue
        budget.declare(member.size, member.name)
        files.append((member, rel))
    return files


def _extract_tar(
    path: Path, budget: _Budget, done: _Written, keep: Keep | None, max_file: int
) -> list[Member]:
    written = []
    with tarfile.open(path, "r:*") as tf:
        files = _tar_files(tf, budget, keep)
        budget.check_free(budget.declared)
        for member, rel in files:
            src = tf.extractfile(member)
            if src is not None:
                target = budget.dest.joinpath(*rel.parts)
                size = _write(src, target, member.name, budget, done, max_file)
                written.append(Member(rel.as_posix(), size))
    return written


@contextmanager
def _undone_on_error(done: _Written) -> Iterator[None]:
    try:
        yield
    except BaseException:
        done.undo()
        raise


def extract_archive(
    path: Path,
    dest: Path,
    max_bytes: int,
    max_members: int,
    not_an_archive: str,
    min_free: int = MIN_FREE,
    keep: Keep | None = None,
    max_file: int = 0,
) -> list[Member]:
    """Unpack the zip or tar at `path` into `dest` (only the regular files `keep` accepts, when
    given; a file past `max_file` bytes is not kept); the files written, in archive order.
    ArchiveRefused (with `not_an_archive` as the message when it is neither) if anything is
    unsafe, unreadable or over a limit, and then nothing it wrote is left."""
    done = _Written()
    dest = Path(dest).absolute()
    done.mkdirs(dest, Path(dest.anchor))
    budget = _Budget(dest, max_bytes, max_members, min_free)
    with _undone_on_error(done), _read_errors_refused():
        if zipfile.is_zipfile(path):
            return _extract_zip(path, budget, done, keep, max_file)
        if tarfile.is_tarfile(path):
            return _extract_tar(path, budget, done, keep, max_file)
        raise ArchiveRefused(not_an_archive)


def list_archive(
    path: Path, max_bytes: int, max_members: int, not_an_archive: str, keep: Keep | None = None
) -> list[Member]:
    """Check the archive by the same rules as `extract_archive`, writing nothing: the regular
    files (`keep` accepts) with the sizes their headers declare, in archive order."""
    budget = _Budget(Path(path).parent, max_bytes, max_members, 0)
    with _read_errors_refused():
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                zipped = _zip_files(zf, budget, keep)
            return [Member(rel.as_posix(), info.file_size) for info, rel in zipped]
        if tarfile.is_tarfile(path):
            with tarfile.open(path, "r:*") as tf:
                tarred = _tar_files(tf, budget, keep)
            return [Member(rel.as_posix(), info.size) for info, rel in tarred]
        raise ArchiveRefused(not_an_archive)


@contextmanager
def _read_errors_refused() -> Iterator[None]:
    """A corrupt archive is the uploader's mistake: ArchiveRefused, never a 500."""
    try:
        yield
    except ArchiveRefused:
        raise
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, ValueError) as e:
        raise ArchiveRefused(f"The archive cannot be read: {e}") from e
