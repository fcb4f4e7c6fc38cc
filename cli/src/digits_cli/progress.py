"""A progress bar on stderr for long operator verbs (one redrawn line on a terminal, a line
every few seconds in a log), so that a 3 a.m. restore shows it is moving."""

from __future__ import annotations

import sys
import time
from typing import TextIO

WIDTH = 30
# Seconds between lines when stderr is not a terminal (a log or a pipe).
LOG_EVERY = 5.0


def size(n: float) -> str:
    """Bytes for people: 1.5 MB."""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


class Progress:
    """Done out of `total` bytes, with what is being worked on now."""

    def __init__(self, total: int, out: TextIO | None = None) -> None:
        self.total = max(total, 1)
        self.done = 0
        self.label = ""
        self.out = out or sys.stderr
        self.tty = self.out.isatty()
        self._last = 0.0
        self._shown = ""

    def start(self, label: str) -> None:
        """Begin one item (a stream)."""
        self.label = label
        self._draw(force=True)

    def advance(self, n: int) -> None:
        """`n` more bytes done."""
        self.done = min(self.total, self.done + n)
        self._draw()

    def set_done(self, done: int) -> None:
        """Exactly `done` bytes done (an item finished whose size was an estimate)."""
        self.done = min(self.total, max(self.done, done))
        self._draw()

    def finish(self) -> None:
        """End the bar's line."""
        self.done = self.total
        self._draw(force=True)
        if self.tty:
            self.out.write("\n")
            self.out.flush()

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < (0.1 if self.tty else LOG_EVERY):
            return
        self._last = now
        share = self.done / self.total
        bar = "#" * int(share * WIDTH)
        line = f"[{bar:<{WIDTH}}] {int(share * 100):3d}%  {size(self.done)} of {size(self.total)}  {self.label}"
        if line == self._shown:
            return
        self._shown = line
        if self.tty:
            self.out.write("\r\x1b[K" + line)
        else:
            self.out.write(line + "\n")
        self.out.flush()
