"""Slow down password guessing: a delay that doubles with each failure, per name and address."""

from __future__ import annotations

import time
from collections import OrderedDict


class LoginThrottle:
    """Failure counts in memory, per username and per client address (bounded, forgotten
    after `window` seconds without a failure). The delay applies before the password is
    checked, right or wrong, so a guesser cannot tell a success by its speed."""

    def __init__(
        self, base: float = 0.1, cap: float = 5.0, window: float = 900.0, size: int = 10_000
    ):
        self.base = base
        self.cap = cap
        self.window = window
        self.size = size
        self._counts: OrderedDict[str, tuple[int, float]] = OrderedDict()

    def failures(self, key: str) -> int:
        """Recent failures for one key (`user:<name>` or `addr:<address>`)."""
        count, last = self._counts.get(key, (0, 0.0))
        return count if time.monotonic() - last < self.window else 0

    def delay(self, username: str, address: str) -> float:
        """Seconds to wait before checking this attempt."""
        n = max(self.failures(_user(username)), self.failures(f"addr:{address}"))
        return 0.0 if n == 0 else min(self.base * 2**n, self.cap)

    def failed(self, username: str, address: str) -> None:
        """Count a wrong pair against the name and the address."""
        for key in (_user(username), f"addr:{address}"):
            self._counts[key] = (self.failures(key) + 1, time.monotonic())
            self._counts.move_to_end(key)
        while len(self._counts) > self.size:
            self._counts.popitem(last=False)

    def succeeded(self, username: str) -> None:
        """A right pair clears the name's count (the address keeps its own)."""
        self._counts.pop(_user(username), None)


def _user(username: str) -> str:
    # Bounded keys: a megabyte "username" must not become a megabyte of memory per try.
    return f"user:{username[:64]}"
