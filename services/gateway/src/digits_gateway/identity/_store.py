"""Accounts on JetStream: fold an account's subject, append with the expected-sequence guard."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from nats.js import JetStreamContext

from digits_gateway.identity._domain import Account, fold
from digits_gateway.identity._errors import AccountNotFound
from digits_gateway.params import USERNAME_RE
from digits_proto import codec, subjects
from digits_proto.runtime import EventStore
from digits_proto.users import UserEvent

MAX_USERNAME = 64


def subject_of(username: str) -> str:
    """The account's subject; a name breaking DIGITS's rule (a NATS wildcard, a space...) is no
    account at all (404), so it never reaches a subject filter."""
    if len(username) > MAX_USERNAME or not USERNAME_RE.match(username):
        raise AccountNotFound(f"No user {username[:MAX_USERNAME]!r}")
    return subjects.user_events(username)


class AccountStore:
    """Load and change accounts; one subject per account on DIGITS_USERS."""

    def __init__(self, js: JetStreamContext):
        self.events: EventStore[UserEvent] = EventStore(
            js, subjects.STREAM_USERS, codec.user_events
        )

    async def load(self, username: str) -> tuple[Account | None, int]:
        """The account (None: none yet) and the stream sequence of its last event."""
        history, seq = await self.events.load(subject_of(username))
        return fold(history), seq

    async def update(
        self, username: str, decide: Callable[[Account | None], Sequence[UserEvent]]
    ) -> tuple[list[UserEvent], int]:
        """Decide on the current state and append; retried on a concurrent change."""
        return await self.events.update(subject_of(username), lambda history: decide(fold(history)))
