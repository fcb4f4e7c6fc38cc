"""This trainer node as an operator sees it: the jobs it runs, and draining it for maintenance.

Draining stops the node's ticket loops (it takes no new job), asks each running job's child for
a resume point at its next metric point (bounded by `drain_wait`), stops the attempt and hands
its ticket back (NAK) with its lease released: another node's trainer gets the ticket and, as
after a crash, continues the job from that point. Undraining starts the loops again.

A job whose lease the gpu-broker no longer renews (expired, taken over) is handed back the same
way, alone (`lease_lost`): its ticket goes back and the job waits for a fresh lease.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime

import msgspec
import structlog

from digits_proto.runtime import Metrics
from digits_trainer.job import Attempt, Ending

log = structlog.get_logger(__name__)

# A job handed back after its point was uploaded still needs its child ended (SIGTERM, grace,
# SIGKILL) and its lease released: this much on top of `drain_wait` before the answer is given.
SETTLE_SECONDS = 15.0


class ResumePoint(msgspec.Struct, frozen=True, kw_only=True):
    """Where a job would continue from: a resume point, or a snapshot (no iteration)."""

    epoch: float
    iteration: int | None = None
    kind: str = "resume point"  # or "snapshot", or "start" when nothing was saved yet


class RunningJob(msgspec.Struct, frozen=True, kw_only=True):
    """One job training on this node right now."""

    model_id: str
    attempt: int
    pid: int | None  # the child (bwrap's pid when confined); None before it starts
    epoch: float
    images_per_second: float | None
    devices: list[str]
    lease_id: str
    lease_expires_at: datetime | None
    last_snapshot: float | None  # epoch of the job's newest snapshot
    resume_point: ResumePoint  # where another node would continue it now
    started_at: datetime
    handing_back: bool = False


class HandedBack(msgspec.Struct, frozen=True, kw_only=True):
    """A job this node handed back while draining, and where its next attempt continues."""

    model_id: str
    attempt: int
    resume_point: ResumePoint
    ended: str  # "handed back", or how it ended meanwhile ("completed", "aborted", ...)


class DrainStatus(msgspec.Struct, frozen=True, kw_only=True):
    """Whether the node takes tickets, and what its last drain handed back."""

    node_id: str
    draining: bool
    running: list[str]  # jobs still on this node
    handed_back: list[HandedBack] = []
    drained_at: datetime | None = None


def wall(seconds: float | None) -> datetime | None:
    """A `time.time()` value as an aware datetime (None stays None)."""
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def resume_point_of(attempt: Attempt) -> ResumePoint:
    """Where a next attempt of this job would continue: its newest uploaded resume point when
    it lies past the last snapshot, else that snapshot, else where this attempt started."""
    relay, state = attempt.relay, attempt.state
    snapshot = relay.snapshot
    if snapshot is None and state.last_snapshot is not None:
        snapshot = state.last_snapshot.epoch
    point = relay.point
    if point is not None and point[0] > (snapshot or 0.0):
        return ResumePoint(epoch=point[0], iteration=point[1])
    if snapshot is not None:
        return ResumePoint(epoch=snapshot, kind="snapshot")
    if attempt.point is not None:  # this attempt resumed from a point and saved none since
        return ResumePoint(epoch=attempt.point[1].epoch, iteration=attempt.point[1].iteration)
    return ResumePoint(epoch=0.0, kind="start")


class Node:
    """The jobs of this node and its ticket loops; `drain()`/`undrain()` for the operator.

    `loops` starts the ticket loops with an event that stops them (they leave between fetches);
    the node calls it at start and on each undrain. `lease_renewed` gives a lease's last grant
    or renewal (wall time).
    """

    def __init__(
        self,
        node_id: str,
        drain_wait: float = 60.0,
        lease_renewed: Callable[[str], float | None] | None = None,
    ):
        self.node_id = node_id
        self.drain_wait = drain_wait
        self.jobs: dict[str, Attempt] = {}
        self.started: dict[str, float] = {}
        self.gone: dict[str, asyncio.Event] = {}  # set once a job's ticket handler is done
        self.lease_renewed = lease_renewed or (lambda _lease_id: None)
        self.loops: Callable[[asyncio.Event], Awaitable[None]] | None = None
        self._stop_taking = asyncio.Event()
        self._drain: asyncio.Task[list[HandedBack]] | None = None
        self._handed_back: list[HandedBack] = []
        self._drained_at: float | None = None
        self._losing: set[asyncio.Task[None]] = set()  # hand-backs of jobs that lost a lease

    @property
    def draining(self) -> bool:
        """True from `drain()` until `undrain()`: the node takes no ticket."""
        return self._stop_taking.is_set()

    async def take_tickets(self) -> None:
        """Start the ticket loops (returns once they consume)."""
        self._stop_taking = asyncio.Event()
        if self.loops is not None:
            await self.loops(self._stop_taking)

    @contextlib.contextmanager
    def running(self, attempt: Attempt) -> Iterator[None]:
        """Show `attempt` among this node's jobs while the body runs."""
        self.jobs[attempt.model_id] = attempt
        self.started[attempt.model_id] = datetime.now(UTC).timestamp()
        gone = self.gone[attempt.model_id] = asyncio.Event()
        try:
            yield
        finally:
            gone.set()
            if self.jobs.get(attempt.model_id) is attempt:
                del self.jobs[attempt.model_id]
                del self.gone[attempt.model_id]
                self.started.pop(attempt.model_id, None)

    def view(self) -> list[RunningJob]:
        """The running jobs, oldest first."""
        return [self._job(a) for a in sorted(self.jobs.values(), key=self._start)]

    def job(self, model_id: str) -> RunningJob | None:
        """One running job, None if it does not run here."""
        attempt = self.jobs.get(model_id)
        return None if attempt is None else self._job(attempt)

    def _start(self, attempt: Attempt) -> float:
        return self.started.get(attempt.model_id, 0.0)

    def _job(self, attempt: Attempt) -> RunningJob:
        lease, child, relay = attempt.lease, attempt.child, attempt.relay
        renewed = self.lease_renewed(lease.lease_id) if lease is not None else None
        expires = renewed + lease.ttl_seconds if lease and renewed is not None else None
        snapshot = relay.snapshot
        if snapshot is None and attempt.state.last_snapshot is not None:
            snapshot = attempt.state.last_snapshot.epoch
        return RunningJob(
            model_id=attempt.model_id,
            attempt=attempt.state.attempts + 1,
            pid=child.pid if child is not None and child.returncode is None else None,
            epoch=relay.epoch,
            images_per_second=relay.images_per_second,
            devices=[d.device_id for d in lease.devices] if lease is not None else [],
            lease_id=lease.lease_id if lease is not None else "",
            lease_expires_at=wall(expires),
            last_snapshot=snapshot,
            resume_point=resume_point_of(attempt),
            started_at=wall(self._start(attempt)) or datetime.now(UTC),
            handing_back=attempt.ending is Ending.HANDED_BACK or self.draining,
        )

    def export(self, metrics: Metrics) -> None:
        """Gauges read at each scrape: jobs running here, their img/s together, draining."""
        jobs = self.view()
        metrics.set("jobs_running", len(jobs))
        metrics.set("images_per_second", sum(j.images_per_second or 0.0 for j in jobs))
        metrics.set("draining", float(self.draining))

    def status(self) -> DrainStatus:
        """What `GET /drain` answers."""
        return DrainStatus(
            node_id=self.node_id,
            draining=self.draining,
            running=sorted(self.jobs),
            handed_back=list(self._handed_back),
            drained_at=wall(self._drained_at),
        )

    async def drain(self) -> DrainStatus:
        """Stop taking tickets and hand every running job back; answers once they are handed
        back (a second call while draining waits for the same hand-back: idempotent)."""
        if self._drain is None:
            log.info("node_draining", node_id=self.node_id, jobs=sorted(self.jobs))
            self._stop_taking.set()
            self._drained_at = datetime.now(UTC).timestamp()
            self._handed_back = []
            self._drain = asyncio.create_task(self._hand_back_all())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._drain), self.drain_wait + SETTLE_SECONDS)
        return self.status()

    async def undrain(self) -> DrainStatus:
        """Take tickets again (nothing to do when not draining)."""
        if self._drain is None:
            return self.status()
        if not self._drain.done():  # jobs still being handed back finish that first
            with contextlib.suppress(Exception):
                await self._drain
        self._drain = None
        await self.take_tickets()
        log.info("node_undrained", node_id=self.node_id)
        return self.status()

    def lease_lost(self, lease_id: str, reason: str) -> None:
        """The broker refused to renew `lease_id`: the job on it stops at its next metric point
        (its resume point) and goes back to the queue, saying why (Leases' `lost` callback)."""
        for attempt in list(self.jobs.values()):
            if attempt.lease is not None and attempt.lease.lease_id == lease_id:
                log.warning("job_lease_lost", model_id=attempt.model_id, reason=reason)
                why = f"Device lease lost: {reason}; waiting for devices again"
                task = asyncio.create_task(attempt.hand_back(self.drain_wait, why))
                self._losing.add(task)
                task.add_done_callback(self._losing.discard)

    async def _hand_back_all(self) -> list[HandedBack]:
        attempts = [(a, self.gone[a.model_id]) for a in self.jobs.values()]
        asked = [a.hand_back(self.drain_wait) for a, _ in attempts]
        for (attempt, _), outcome in zip(
            attempts, await asyncio.gather(*asked, return_exceptions=True), strict=True
        ):
            if isinstance(outcome, Exception):  # its attempt still ends with its handler
                log.error("hand_back_failed", model_id=attempt.model_id, error=repr(outcome))
        for attempt, gone in attempts:  # the handler ends the child, releases the lease
            await gone.wait()
            ending = attempt.result.value if attempt.result is not None else "stopped"
            self._handed_back.append(
                HandedBack(
                    model_id=attempt.model_id,
                    attempt=attempt.state.attempts + 1,
                    resume_point=resume_point_of(attempt),
                    ended=ending,
                )
            )
        log.info("node_drained", node_id=self.node_id, handed_back=len(attempts))
        return self._handed_back
