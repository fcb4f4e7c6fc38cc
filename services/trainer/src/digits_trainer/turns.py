"""Network checks queued per user: one user's slow networks never hold up another's check."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from digits_proto.runtime import DomainError

FIELD = "custom_network"


class Busy(DomainError):
    """One user has too many checks queued (429): the others' checks are not held up."""

    code = 429

    def __init__(self, queued: int) -> None:
        super().__init__(
            f"Too many network checks of yours are running or waiting ({queued}); "
            "try again when they have finished",
            field=FIELD,
        )


class Turns:
    """Per-user queues in front of a shared pool of children."""

    def __init__(self, per_user: int = 1, backlog: int = 4, total: int = 2) -> None:
        self.per_user = max(1, per_user)
        self.backlog = max(0, backlog)
        self.total = asyncio.Semaphore(max(1, total))
        self.users: dict[str, tuple[asyncio.Semaphore, list[int]]] = {}

    @contextlib.asynccontextmanager
    async def turn(self, user: str) -> AsyncIterator[None]:
        """Wait for a turn of `user` and then of the pool; Busy past the user's backlog."""
        own, queued = self.users.setdefault(user, (asyncio.Semaphore(self.per_user), [0]))
        if queued[0] >= self.per_user + self.backlog:
            raise Busy(queued[0])
        queued[0] += 1
        try:
            async with own, self.total:
                yield
        finally:
            queued[0] -= 1
            if not queued[0]:
                self.users.pop(user, None)
