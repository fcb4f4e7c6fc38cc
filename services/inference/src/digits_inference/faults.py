"""A file this node could not write (a full disk, a read-only folder) as a clear refusal: the
reason, the path and the node, so that an operator knows which disk of which machine to look
at. Never a 500, never a traceback."""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Iterator
from pathlib import Path
from typing import TypeGuard

from digits_inference.errors import InferenceError
from digits_inference.settings import default_node_id

# What only a write raises: a full disk or quota, a file too large, a read-only file system.
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})


class WriteFailed(InferenceError):
    """A file could not be written here (a classify-many job's archive or snapshot cache)."""

    code = 507  # Insufficient Storage: the request was fine, this node's disk was not

    def __init__(self, error: OSError, where: Path | str):
        super().__init__(write_failure(error, where))


def write_failure(error: OSError, where: Path | str) -> str:
    """`<reason> writing <path> on node <node>`: the file the error names (open() names it,
    write() does not), else `where`, the folder being written."""
    reason = error.strerror or str(error) or type(error).__name__
    path = error.filename if error.filename is not None else where
    return f"{reason} writing {path} on node {default_node_id()}"


def on_disk(error: BaseException) -> TypeGuard[OSError]:
    """A file-system error: an OSError, but not a network timeout or a refused connection
    (TimeoutError and ConnectionError are OSErrors too)."""
    return isinstance(error, OSError) and not isinstance(error, (TimeoutError, ConnectionError))


@contextlib.contextmanager
def writing(where: Path | str) -> Iterator[None]:
    """Turn a file-system error raised in the block into WriteFailed naming `where`."""
    try:
        yield
    except OSError as e:
        if not on_disk(e):
            raise
        raise WriteFailed(e, where) from e
