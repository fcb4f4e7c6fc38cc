"""Is every stream the system uses available? What `/ready` asks JetStream, cached for a second.

A stream is available when its info answers, within a short timeout, naming a leader that hears
from a quorum of the stream's replicas. A leader whose followers died keeps calling itself leader
(measured: 15 s and on, on an idle stream), so its followers' `active` (time since it last heard
from each) counts too. On a single server the server itself leads and there are no followers. Stream info is the one JetStream read every
service's NATS user may make on every stream (account info is not in the permission table).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import nats.errors
from nats.aio.client import Client
from nats.js.api import PeerInfo
from nats.js.errors import APIError, NotFoundError

from digits_proto.permissions import ALL_STREAMS

CHECK_TIMEOUT_SECONDS = 1.5  # the launcher's /ready poll waits 2 s: answer within it
CACHE_SECONDS = 1.0  # /ready may be polled often; JetStream is asked at most once a second
# A follower the leader has not heard from for this long is lost (it hears from each every ~1 s;
# margin for a loaded machine, where a false "no quorum" would flash the banner).
LOST_PEER_SECONDS = 5.0

NOT_REACHABLE = "JetStream: not reachable"
NO_QUORUM = "JetStream: no quorum"
NO_RESPONDERS = "no responders"


class StreamCheck:
    """The reasons JetStream is not fit for work (empty when every stream has a leader)."""

    def __init__(
        self,
        nc: Client,
        streams: Sequence[str] = ALL_STREAMS,
        timeout: float = CHECK_TIMEOUT_SECONDS,
        cache_seconds: float = CACHE_SECONDS,
    ):
        self.nc = nc
        self.js = nc.jetstream()
        self.streams = tuple(streams)
        self.timeout = timeout
        self.cache_seconds = cache_seconds
        self._lock = asyncio.Lock()
        self._at = -float("inf")
        self._reasons: list[str] = []

    async def reasons(self) -> list[str]:
        """Cached for `cache_seconds`; concurrent callers share one round of requests."""
        async with self._lock:
            if time.monotonic() - self._at >= self.cache_seconds:
                self._reasons = await self._check()
                self._at = time.monotonic()
            return list(self._reasons)

    async def _check(self) -> list[str]:
        if not self.nc.is_connected:
            # Requests would only queue until the client reconnects: say so at once.
            return [f"{NOT_REACHABLE} (NATS connection lost; reconnecting)"]
        found = await asyncio.gather(*(self._stream(name) for name in self.streams))
        problems = {
            name: problem for name, problem in zip(self.streams, found, strict=True) if problem
        }
        return _summarise(problems, len(self.streams))

    async def _stream(self, name: str) -> str | None:
        """None when `name` has a leader with a quorum, else a short phrase saying why not."""
        try:
            info = await asyncio.wait_for(self.js.stream_info(name), timeout=self.timeout)
        except NotFoundError:
            return "missing"
        except nats.errors.NoRespondersError:
            return NO_RESPONDERS
        except (TimeoutError, nats.errors.TimeoutError):
            # Nobody leads the stream (its replicas lost their quorum) or its node is gone.
            return f"no answer in {self.timeout:g} s"
        except APIError as e:
            if e.code == 503:  # "JetStream system temporarily unavailable": no meta quorum
                return e.description or "JetStream unavailable"
            return f"error {e.err_code or e.code}: {e.description}"
        except nats.errors.Error as e:  # closed, draining, reconnecting meanwhile
            return type(e).__name__
        cluster = info.cluster
        if cluster is None:
            return None
        if not cluster.leader:
            return "no leader"
        peers = cluster.replicas or []
        up = 1 + sum(1 for peer in peers if _peer_up(peer))
        if up < (1 + len(peers)) // 2 + 1:
            return f"leader {cluster.leader} hears from {up} of {1 + len(peers)} replicas"
        return None


def _peer_up(peer: PeerInfo) -> bool:
    active_s = (peer.active or 0) / 1e9  # nanoseconds since the leader last heard from it
    # A follower long gone reads `current: false` (and `active` 0): either marks it lost.
    return peer.current is not False and not peer.offline and active_s < LOST_PEER_SECONDS


def _summarise(problems: dict[str, str], total: int) -> list[str]:
    """At most two reasons, streams without quorum and streams missing, each naming its streams
    grouped by what was seen (what the operator, and the banner's one line, reads)."""
    if not problems:
        return []
    if len(problems) == total and set(problems.values()) == {NO_RESPONDERS}:
        return [f"{NOT_REACHABLE} (no responders: is JetStream enabled?)"]
    by_problem: dict[str, list[str]] = {}
    for name, problem in problems.items():
        by_problem.setdefault(problem, []).append(name)
    missing = by_problem.pop("missing", [])
    reasons = []
    if by_problem:
        seen = "; ".join(f"{', '.join(names)} ({problem})" for problem, names in by_problem.items())
        reasons.append(f"{NO_QUORUM} for streams {seen}")
    if missing:
        reasons.append(f"JetStream: streams missing: {', '.join(missing)}")
    return reasons
