"""Each process's output in `<data>/logs/<name>.log`, rotated by size (`.1` … `.N`, oldest gone).

The launcher reads a child's stdout+stderr through a pipe on a thread and writes it here, so
every service, and nats-server, is bounded the same way without any of them knowing.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import BinaryIO

CHUNK = 64 * 1024


class RotatingLog:
    """One log file of at most `max_bytes` (0 = unbounded) plus `backups` older ones."""

    def __init__(self, path: Path, max_bytes: int, backups: int):
        self.path, self.max_bytes, self.backups = path, max_bytes, max(0, backups)
        self._lock = threading.Lock()  # a restarted child's pump may overlap the old one's
        self._file: BinaryIO | None = None
        self._size = 0

    def write(self, data: bytes) -> None:
        with self._lock:
            if self._file is None:
                self._file = open(self.path, "ab")  # noqa: SIM115 - held across writes
                self._size = self._file.tell()
            if self.max_bytes and self._size and self._size + len(data) > self.max_bytes:
                self._rotate()
            self._file.write(data)
            self._file.flush()
            self._size += len(data)

    def _rotate(self) -> None:
        assert self._file is not None
        self._file.close()
        for n in range(self.backups - 1, 0, -1):  # name.(n) → name.(n+1); the last one goes
            older = self.path.with_name(f"{self.path.name}.{n}")
            if older.exists():
                older.replace(self.path.with_name(f"{self.path.name}.{n + 1}"))
        if self.backups:
            self.path.replace(self.path.with_name(f"{self.path.name}.1"))
        else:
            self.path.unlink(missing_ok=True)
        self._file = open(self.path, "ab")  # noqa: SIM115
        self._size = 0

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


def follow(stream: BinaryIO, log: RotatingLog, name: str) -> threading.Thread:
    """Copy `stream` (a child's stdout pipe) into `log` on a daemon thread until EOF."""

    def pump() -> None:
        with contextlib.suppress(OSError, ValueError):
            while chunk := stream.read1(CHUNK):  # type: ignore[attr-defined]
                # A full disk loses lines, never blocks the child (the pipe keeps draining).
                with contextlib.suppress(OSError):
                    log.write(chunk)
        with contextlib.suppress(OSError):
            stream.close()

    thread = threading.Thread(target=pump, name=f"log-{name}", daemon=True)
    thread.start()
    return thread
