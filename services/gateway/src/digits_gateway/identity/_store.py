"""Accounts on JetStream: fold an account's subject, append with the expected-sequence guard."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from nats.js import JetStreamContext

from digits_gateway.identity._domain import Account, fold
from digits_proto import codec, subjects
from digits_proto.runtime import EventStore
from digits_proto.users import UserEvent


class AccountStore:
    """Load and change accounts; one subject per account on DIGITS_USERS."""

    def __init__(self, js: JetStreamContext):
        self.events: EventStore[UserEvent] = EventStore(
            js, subjects.STREAM_USERS, codec.user_events
        )

    async def load(self, username: str) -> tuple[Account | None, int]:
        """The account (None: none yet) and the stream sequence of its last event."""
        history, seq = await self.events.load(subjects.user_events(username))
        return fold(history), seq

    async def update(
        self, username: str, decide: Callable[[Account | None], Sequence[UserEvent]]
    ) -> tuple[list[UserEvent], int]:
        """Decide on the current state and append; retried on a concurrent change."""
        return await self.events.update(
            subjects.user_events(username), lambda history: decide(fold(history))
        )
