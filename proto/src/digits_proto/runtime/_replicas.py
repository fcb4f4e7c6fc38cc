"""How many copies JetStream keeps, the error that asks for an operator, and JetStream calls
that ride out a stream leader election (retried until a deadline, exactly once by message id)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

import nats.errors
import structlog
from nats.js import JetStreamContext
from nats.js.api import PubAck
from nats.js.errors import APIError, NoStreamResponseError, ServiceUnavailableError

from digits_proto.headers import MSG_ID

log = structlog.get_logger(__name__)

T = TypeVar("T")

# Replicas of every stream, KV and Object Store bucket (1..5; 3 on a 3-node cluster). Unset: new
# ones get 1 and existing ones keep theirs, so a service not told the count never fights the
# provisioner over it.
REPLICAS_ENV = "DIGITS_NATS_REPLICAS"
MAX_REPLICAS = 5  # JetStream's own limit
# How long a JetStream write or read keeps retrying while its stream has no leader.
RETRY_ENV = "DIGITS_NATS_RETRY_SECONDS"
RETRY_SECONDS = 30.0
# sysexits.h EX_CONFIG: the launcher does not restart a service that exits with it (a restart
# would meet the same configuration and fail the same way: a crash loop).
EXIT_NEEDS_OPERATOR = 78
# First attempt's wait for an answer: a request sent to a leader just killed gets none, so the
# wait bounds the stall; later attempts wait longer (a loaded server is slow, not gone).
FIRST_ATTEMPT_SECONDS = 1.0
BACKOFF_FIRST, BACKOFF_MAX = 0.05, 0.5
# JetStream's "temporarily unavailable" (no leader, no quorum yet), and "duplicate message id
# is in process" (an earlier attempt of this very message still being replicated: a later one
# gets its ack).
TEMPORARILY_UNAVAILABLE = (10008, 10158)


class NeedsOperator(SystemExit):
    """The bus differs from what this service needs in a way only an operator may change.

    A SystemExit with code 78: the process ends without a traceback, the launcher without a
    restart. `str()` says what differs and what to do.
    """

    def __init__(self, message: str):
        super().__init__(EXIT_NEEDS_OPERATOR)
        self.message = message

    def __str__(self) -> str:
        return self.message


class BusUnavailable(nats.errors.TimeoutError):
    """A JetStream call found no stream leader (or no answer) until the retry deadline."""

    def __init__(self, what: str, seconds: float, cause: BaseException):
        super().__init__()
        self.what, self.seconds, self.cause = what, seconds, cause

    def __str__(self) -> str:
        return (
            f"NATS JetStream did not answer {self.what} for {self.seconds:.0f} s "
            f"({type(self.cause).__name__}; {RETRY_ENV} sets how long to wait): "
            "is a majority of the NATS nodes up?"
        )


def nats_replicas(env: Mapping[str, str] | None = None) -> int | None:
    """DIGITS_NATS_REPLICAS (1..5), None when unset; any other value: NeedsOperator."""
    raw = (os.environ if env is None else env).get(REPLICAS_ENV, "").strip()
    if not raw:
        return None
    try:
        return check_replicas(int(raw))
    except ValueError:
        raise NeedsOperator(
            f"{REPLICAS_ENV}={raw!r}: give a number from 1 to {MAX_REPLICAS}"
        ) from None


def check_replicas(replicas: int) -> int:
    """`replicas` if JetStream allows it, else a clear error naming the setting."""
    if not 1 <= replicas <= MAX_REPLICAS:
        raise NeedsOperator(f"{REPLICAS_ENV}={replicas}: give a number from 1 to {MAX_REPLICAS}")
    return replicas


def retry_seconds(env: Mapping[str, str] | None = None) -> float:
    """DIGITS_NATS_RETRY_SECONDS (default 30)."""
    raw = (os.environ if env is None else env).get(RETRY_ENV, "").strip()
    try:
        seconds = float(raw) if raw else RETRY_SECONDS
    except ValueError:
        seconds = -1.0
    if seconds <= 0:
        raise NeedsOperator(f"{RETRY_ENV}={raw!r}: give a number of seconds above 0")
    return seconds


def is_election(e: BaseException) -> bool:
    """An error a stream leader election (or a node being lost) answers with."""
    if isinstance(e, APIError):
        return isinstance(e, ServiceUnavailableError) or e.err_code in TEMPORARILY_UNAVAILABLE
    return isinstance(
        e,
        NoStreamResponseError
        | nats.errors.NoRespondersError
        | nats.errors.ConnectionReconnectingError
        | TimeoutError,  # nats' TimeoutError and asyncio's are TimeoutErrors
    )


def is_unavailable(e: BaseException) -> bool:
    """JetStream said it has no leader yet (an answer, unlike a timeout, which may as well be
    a request the user's permissions dropped)."""
    return is_election(e) and not isinstance(e, TimeoutError)


async def riding_out(
    what: str,
    attempt: Callable[[float], Awaitable[T]],
    longest: float = 5.0,
    deadline: float | None = None,
    first: float = FIRST_ATTEMPT_SECONDS,
    retry: Callable[[BaseException], bool] = is_election,
) -> T:
    """`attempt(timeout)` until it answers; election errors are retried until the deadline.

    `attempt` must be safe to repeat: a write carries its Nats-Msg-Id (the stream's duplicate
    window answers a repeat with the first one's ack), a read starts over. The first attempt
    waits `first` seconds for its answer, each next one twice as long up to `longest`. Past the
    deadline (DIGITS_NATS_RETRY_SECONDS): BusUnavailable. `retry` says which errors to retry.
    """
    seconds = retry_seconds() if deadline is None else deadline
    start = time.monotonic()
    end = start + seconds
    timeout, pause, failures = min(first, longest), BACKOFF_FIRST, 0
    while True:
        try:
            result = await attempt(max(0.1, min(timeout, end - time.monotonic())))
        except Exception as e:
            if not retry(e):
                raise
            failures += 1
            left = end - time.monotonic()
            if left <= 0:
                raise BusUnavailable(what, seconds, e) from e
            if failures == 1:
                log.warning("jetstream_retrying", what=what, error=type(e).__name__)
            await asyncio.sleep(min(pause, left))
            timeout, pause = min(timeout * 2, longest), min(pause * 2, BACKOFF_MAX)
            continue
        if failures:
            stall = round(time.monotonic() - start, 3)
            log.info("jetstream_recovered", what=what, attempts=failures + 1, stall_s=stall)
        return result


async def publish_once(
    js: JetStreamContext, subject: str, payload: bytes, headers: dict[str, str]
) -> PubAck:
    """`js.publish` riding out a stream leader election (see `riding_out`), stored exactly once:
    `headers` must carry the message's Nats-Msg-Id (a repeat within the stream's duplicate
    window is answered with the first one's ack, `duplicate` set)."""
    if MSG_ID not in headers:
        raise ValueError(f"publish_once to {subject}: the headers carry no {MSG_ID}")
    return await riding_out(
        f"publish to {subject}",
        lambda t: js.publish(subject, payload, timeout=t, headers=headers),
        longest=js._timeout,  # pyright: ignore[reportPrivateUsage]
    )
