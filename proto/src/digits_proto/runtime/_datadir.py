"""The start check: a service whose data directory cannot be written stops with one clear line.

Without it the first write (the operator token, a cache folder, a job's log) raised wherever it
happened, as a traceback, sometimes only once a job ran. `SystemExit` with a message prints that
one line to stderr and exits 1: no traceback, and the launcher sees the exit code.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def check_writable(path: str | os.PathLike[str]) -> None:
    """Create `path` if it is missing and write (and remove) a small file in it; SystemExit
    "data directory <path> is not writable: <reason>" when either fails."""
    folder = Path(path).absolute()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # A real write, not os.access(): root passes access() on a read-only mount, and a full
        # disk only shows when bytes go to it.
        fd, name = tempfile.mkstemp(dir=folder, prefix=".write-check.")
        try:
            os.write(fd, b"digits\n")
            os.fsync(fd)
        finally:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(name)
    except OSError as e:
        reason = e.strerror or str(e)
        raise SystemExit(f"data directory {folder} is not writable: {reason}") from None
