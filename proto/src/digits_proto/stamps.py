"""When, and under which ids, a decision's events happen: a clock and an id source injected at
the edge, so that a `decide` function is pure (the same command on the same state gives the
same events every run) and a test passes a fixed one.

`Event`'s own defaults (a random id, now) stay for code at the edge that records what it saw;
a decision takes its `Stamps` from the handler that calls it.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

import msgspec

from digits_proto.base import Event, utcnow

E = TypeVar("E", bound=Event)

# A test's default stopped clock.
FIXED_TIME = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Stamps:
    """The time a decision happens at and where its events' ids come from."""

    now: datetime
    new_id: Callable[[], str]


def live() -> Stamps:
    """The wall clock read once, and random ids: what a handler passes to a decision."""
    return Stamps(now=utcnow(), new_id=lambda: uuid.uuid4().hex)


def fixed(now: datetime = FIXED_TIME, prefix: str = "e") -> Stamps:
    """A stopped clock and numbered ids (`e1`, `e2`, …): two decisions given a fresh one each
    produce equal events. For pure tests only: an event id is JetStream's de-duplication id,
    so events stamped by two fresh `fixed()` and appended to one stream would be dropped."""
    counter = itertools.count(1)
    return Stamps(now=now, new_id=lambda: f"{prefix}{next(counter)}")


def stamped(event: E, at: Stamps) -> E:
    """`event` with its id and time from `at` (for a decision that builds its event first)."""
    return msgspec.structs.replace(event, event_id=at.new_id(), occurred_at=at.now)
