"""Real size-limited and read-only folders for fault tests: a tmpfs mounted for one test.

Root ignores file modes, so `chmod 0555` proves nothing about a read-only folder; a tmpfs mounted
`ro`, or one a few MiB large that a test fills, fails writes the way a real disk does (EROFS,
ENOSPC). Tests that need one skip, saying why, when not root or when the mount is refused (a
container without CAP_SYS_ADMIN).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def tmpfs(folder: Path, size: str = "2m", read_only: bool = False) -> Iterator[Path]:
    """Mount a fresh tmpfs of `size` on `folder` (created) for the block; unmounted after."""
    if os.geteuid() != 0:
        pytest.skip("mounting a size-limited tmpfs needs root")
    folder.mkdir(parents=True, exist_ok=True)
    options = f"size={size},mode=0755" + (",ro" if read_only else "")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
    try:
        yield folder
    finally:
        # Lazy: a process the test started may still hold a file open there for a moment.
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, check=False)


def fill(folder: Path, name: str = "filler") -> Path:
    """Write zeros into `folder/name` until the file system is full; returns the file."""
    path = folder / name
    chunk = b"\0" * (64 << 10)
    with path.open("wb", buffering=0) as f:
        try:
            while True:
                f.write(chunk)
        except OSError:  # ENOSPC: full; then smaller writes take what is left
            pass
        with contextlib.suppress(OSError):
            while True:
                f.write(b"\0" * 512)
    return path
