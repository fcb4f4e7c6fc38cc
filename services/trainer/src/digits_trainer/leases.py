"""Devices from the gpu-broker: acquire a lease, renew it every ttl/3, release it at the end.

A renewal the broker refuses (the lease expired or was taken over: 404, another holder: 409)
means the devices are no longer the job's: renewing stops and `lost` is told, which has the
job stop at its next metric point and go back to the queue (node.py) for a fresh lease. A
broker that does not answer is not a refusal: renewing goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import structlog
from nats.aio.client import Client
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from digits_proto import codec, subjects
from digits_proto.gpus import AcquireLease, LeaseAccepted, ReleaseLease, RenewLease
from digits_proto.replies import Rejected
from digits_proto.runtime import request
from digits_trainer.domain import ModelState

log = structlog.get_logger(__name__)

UNREACHABLE = (NoRespondersError, NatsTimeout, TimeoutError)
NODE_ID = re.compile(r"[A-Za-z0-9_-]+")
SHARED = {
    "acquire": subjects.CMD_GPUS_ACQUIRE,
    "renew": subjects.CMD_GPUS_RENEW,
    "release": subjects.CMD_GPUS_RELEASE,
}


class LeaseRefused(Exception):
    """The broker refused for good (e.g. a device index that does not exist)."""


def lost_for_good(rejected: Rejected) -> bool:
    """A refused renewal that no retry fixes: the broker says the lease is not ours (a 4xx
    other than 408/429, which say "later"); a 5xx is the broker's own trouble."""
    return 400 <= rejected.code < 500 and rejected.code not in (408, 429)


class Leases:
    """The gpu-broker as one trainer worker sees it."""

    def __init__(
        self,
        nc: Client,
        holder: str,
        timeout: float = 5.0,
        node_id: str = "",
        lost: Callable[[str, str], None] | None = None,
    ):
        self.nc = nc
        self.holder = holder
        self.timeout = timeout
        # Jobs run where their devices are: ask this node's broker (the shared subject if none).
        self.node_id = node_id if NODE_ID.fullmatch(node_id) else ""
        # lease id -> wall time of its grant or last renewal (its expiry is ttl later).
        self.renewed: dict[str, float] = {}
        # Told (lease id, the broker's reason) when a renewal is refused for good.
        self.lost = lost or (lambda _lease_id, _reason: None)

    async def acquire(self, job_id: str, job: ModelState) -> LeaseAccepted | None:
        """Devices for a job, or None when it must wait (its turn, or no broker answers)."""
        command = AcquireLease(
            job_id=job_id,
            holder=self.holder,
            count=job.spec.select_gpu_count,
            device_indexes=list(job.spec.select_gpus),
            priority=job.spec.priority,
            user=job.username,
            submitted=job.submitted,
        )
        try:
            body, rejected = await self._send(self.node_id, "acquire", command)
        except UNREACHABLE:
            log.info("gpu_broker_unreachable", job_id=job_id)
            return None
        reply = rejected or codec.lease_reply.decode(body)
        if isinstance(reply, LeaseAccepted):
            self.renewed[reply.lease_id] = time.time()
            return reply
        if reply.code == 409:
            return None
        raise LeaseRefused(reply.message)

    @contextlib.asynccontextmanager
    async def hold(self, lease: LeaseAccepted) -> AsyncIterator[None]:
        """Keep `lease` alive while the body runs, then release it whatever happened."""
        renewing = asyncio.create_task(self._renew_forever(lease))
        try:
            yield
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing
            await self.release(lease)

    async def release(self, lease: LeaseAccepted) -> None:
        """Give the devices back (best effort: an unanswered release expires by TTL)."""
        command = ReleaseLease(lease_id=lease.lease_id, holder=self.holder)
        self.renewed.pop(lease.lease_id, None)
        try:
            await self._send(lease.node_id, "release", command)
        except Exception as e:  # noqa: BLE001 - the lease then expires by itself
            log.warning("lease_release_failed", lease_id=lease.lease_id, error=str(e))

    async def _renew_forever(self, lease: LeaseAccepted) -> None:
        command = RenewLease(lease_id=lease.lease_id, holder=self.holder)
        while True:
            await asyncio.sleep(max(lease.ttl_seconds / 3, 0.1))
            try:
                _, rejected = await self._send(lease.node_id, "renew", command)
            except Exception as e:  # noqa: BLE001 - keep trying until the job ends
                log.warning("lease_renew_failed", lease_id=lease.lease_id, error=str(e))
                continue
            if rejected is None:
                self.renewed[lease.lease_id] = time.time()
            elif lost_for_good(rejected):
                log.warning("lease_lost", lease_id=lease.lease_id, reason=rejected.message)
                self.renewed.pop(lease.lease_id, None)
                self.lost(lease.lease_id, rejected.message)
                return  # nothing left to renew
            else:
                log.warning("lease_renew_refused", lease_id=lease.lease_id, reason=rejected.message)

    async def _send(self, node_id: str, verb: str, command: Any) -> tuple[bytes, Rejected | None]:
        """To `node_id`'s broker, or the shared subject when it has none of its own."""
        if node_id and NODE_ID.fullmatch(node_id):
            with contextlib.suppress(NoRespondersError):
                subject = subjects.gpus_node_command(node_id, verb)
                return await request(self.nc, subject, command, timeout=self.timeout)
        return await request(self.nc, SHARED[verb], command, timeout=self.timeout)
