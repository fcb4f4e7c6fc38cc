"""Correlation and causation ids: which request started a chain, which message caused this one.

The chain being handled lives in a context variable, so everything awaited or spawned (tasks
copy their context) while a command, ticket or event is handled, including long work such as a
training attempt and its relay, stamps what it sends with the same correlation id, and every
log line carries it (bound into structlog's contextvars, which `configure_logging` merges).
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Protocol, TypeVar

import structlog

from digits_proto import headers

log = structlog.get_logger(__name__)

# What an id taken from outside (an HTTP header, a message header) may be: a short, inert
# token, safe in a header, a log line and a URL.
SANE_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")


@dataclass(frozen=True)
class Trace:
    """The chain being handled: the id that started it, and the id of the message at hand."""

    correlation_id: str
    causation_id: str


_current: ContextVar[Trace | None] = ContextVar("digits_trace", default=None)


def new_id() -> str:
    """A fresh id for a chain or a message."""
    return uuid.uuid4().hex


def sane_id(value: str | None) -> str | None:
    """`value` if it is a usable id, else None (too long, empty, or odd characters)."""
    return value if value is not None and SANE_ID.fullmatch(value) else None


def request_id(value: str | None) -> str:
    """The id of an HTTP request that starts a chain: the caller's `X-Request-Id` when it is
    sane, else a new one."""
    return sane_id(value) or new_id()


def current_trace() -> Trace | None:
    """The chain being handled in this context, None outside any."""
    return _current.get()


@contextlib.contextmanager
def chain(correlation_id: str, causation_id: str) -> Iterator[Trace]:
    """Handle something within the chain `correlation_id`, caused by `causation_id` (the
    id of the message at hand): what is sent meanwhile names it; log lines carry both."""
    trace = Trace(correlation_id, causation_id)
    token = _current.set(trace)
    try:
        with structlog.contextvars.bound_contextvars(
            correlation_id=correlation_id, causation_id=causation_id
        ):
            yield trace
    finally:
        _current.reset(token)


def started(reason: str, causation_id: str = "") -> Trace:
    """A new chain (nothing said which one this belongs to): logged, so it can be found."""
    root = new_id()
    trace = Trace(root, causation_id or root)
    log.info("correlation_started", correlation_id=root, reason=reason)
    return trace


def handling(
    hdrs: Mapping[str, str] | None, message_id: str = ""
) -> contextlib.AbstractContextManager[Trace]:
    """The chain of a received message: its correlation header (or a new chain when it has
    none), caused by the message itself (`message_id`, else its `Digits-Message-Id`, else its
    `Nats-Msg-Id`, which an event's is its `event_id`)."""
    hdrs = hdrs or {}
    cause = (
        sane_id(message_id)
        or sane_id(hdrs.get(headers.MESSAGE_ID))
        or sane_id(hdrs.get(headers.MSG_ID))
        or new_id()
    )
    correlation = sane_id(hdrs.get(headers.CORRELATION_ID))
    if correlation is None:
        correlation = started("message without a correlation id", cause).correlation_id
    return chain(correlation, cause)


def trace_headers(
    hdrs: Mapping[str, str] | None = None, *, command: bool = False
) -> dict[str, str]:
    """`hdrs` plus the current chain's correlation id and, as cause, the message at hand.

    `command`: the message is a command or ticket, given its own `Digits-Message-Id` (what its
    effects will name as their cause). Outside any chain (a sweep, a timer) each message starts
    its own.
    """
    out = dict(hdrs or {})
    trace = _current.get() or started("sent outside any chain")
    out.setdefault(headers.CORRELATION_ID, trace.correlation_id)
    out.setdefault(headers.CAUSATION_ID, trace.causation_id)
    if command:
        out.setdefault(headers.MESSAGE_ID, new_id())
    return out


class _Received(Protocol):
    @property
    def headers(self) -> dict[str, str] | None: ...


M = TypeVar("M", bound=_Received)
R = TypeVar("R")


def traced(handle: Callable[[M], Awaitable[R]]) -> Callable[[M], Awaitable[R]]:
    """`handle`, run within the chain of the message it receives (a NATS Msg, a micro
    Request: anything with `headers`)."""

    async def within_chain(msg: M) -> R:
        with handling(msg.headers):
            return await handle(msg)

    return within_chain
