"""What a build's failed write (a full disk, a read-only folder) tells the dataset's owner."""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Iterator
from pathlib import Path

# What a full or read-only disk raises: the build was writing, whatever call failed.
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EFBIG})


@contextlib.contextmanager
def naming(path: Path) -> Iterator[None]:
    """Give an OSError raised while writing `path` that file's name: write(), flush() and
    close() raise ENOSPC without one, and the job's error must say which file."""
    try:
        yield
    except OSError as e:
        if e.filename is None:
            raise OSError(e.errno, e.strerror or str(e), str(path)) from e
        raise


def build_failure(error: OSError, node: str, where: Path) -> str:
    """`<reason> writing <file> on node <node>` for a full or read-only disk (`where`, the
    build's folder, when the error names no file); `<reason>: <file> on node <node>` else."""
    reason = error.strerror or str(error) or type(error).__name__
    path = error.filename if error.filename is not None else where
    if error.errno in DISK_ERRNOS:
        return f"{reason} writing {path} on node {node}"
    return f"{reason}: {path} on node {node}"
