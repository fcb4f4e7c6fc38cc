"""Where networks run: a free GPU leased from the gpu-broker without waiting, else the CPU."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

import mxnet as mx
import structlog
from nats.aio.client import Client
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from digits_proto import codec, subjects
from digits_proto.gpus import AcquireLease, Device, LeaseAccepted, ReleaseLease, RenewLease
from digits_proto.runtime import request

log = structlog.get_logger(__name__)

NODE_ID = re.compile(r"[A-Za-z0-9_-]+")
UNREACHABLE = (NoRespondersError, NatsTimeout, TimeoutError, OSError)


def device_context(devices: list[Device], gpus_visible: int | None = None) -> mx.Context:
    """The MXNet context for a leased device: its GPU when this build sees it, else the CPU.

    The same rule as the trainer's child: a CPU-only MXNet given `gpu<N>` logs and uses the CPU.
    """
    gpus = [d.index for d in devices if d.kind == "gpu"]
    if not gpus:
        return mx.cpu()
    visible = mx.context.num_gpus() if gpus_visible is None else gpus_visible
    if gpus[0] < visible:
        return mx.gpu(gpus[0])
    log.warning("leased_gpu_not_visible", device=f"gpu:{gpus[0]}", visible=visible)
    return mx.cpu()


class Placement:
    """A GPU lease asked for in the background; requests never wait for the broker.

    Only a GPU is kept: a CPU slot granted by a broker without GPUs is released at once.

    `context()` answers at once with what is held now (the CPU until a lease arrives) and, when
    nothing is held and the last try is older than `retry_after`, starts one non-waiting acquire
    (`AcquireLease(wait=False)`: never in the training queue). A held lease is renewed every
    ttl/3 and released after `idle_release` seconds without a forward pass, so training gets
    the device back; `on_release` then runs (to drop the nets loaded on it).
    """

    def __init__(
        self,
        nc: Client | None,
        *,
        enabled: bool = True,
        node_id: str = "",
        idle_release: float = 60.0,
        retry_after: float = 10.0,
        no_gpu_backoff: float = 300.0,
        timeout: float = 1.0,
        on_release: Callable[[mx.Context], Any] | None = None,
    ):
        self.nc = nc
        self.enabled = enabled and nc is not None
        self.node_id = node_id if NODE_ID.fullmatch(node_id or "") else ""
        self.idle_release = idle_release
        self.retry_after = retry_after
        self.no_gpu_backoff = no_gpu_backoff
        self.timeout = timeout
        self.on_release = on_release
        self.holder = f"inference-{uuid.uuid4().hex[:12]}"
        self.lease: LeaseAccepted | None = None
        self.ctx: mx.Context = mx.cpu()
        self.last_used = 0.0
        self._last_try = float("-inf")
        self._tasks: set[asyncio.Task[None]] = set()

    def context(self) -> mx.Context:
        """The context to run on now; may start a background acquire (never waits for it)."""
        self.last_used = time.monotonic()
        due = time.monotonic() - self._last_try >= self.retry_after
        if self.enabled and self.lease is None and due and not self._busy():
            self._last_try = time.monotonic()
            self._spawn(self._acquire())
        return self.ctx

    async def acquire_now(self) -> mx.Context:
        """Try once to lease a device and wait for the answer (start-up and tests)."""
        self.last_used = time.monotonic()
        if self.enabled and self.lease is None:
            self._last_try = time.monotonic()
            await self._acquire()
        return self.ctx

    def _busy(self) -> bool:
        return any(t.get_name() == "acquire" and not t.done() for t in self._tasks)

    def _spawn(self, coro: Any, name: str = "acquire") -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _acquire(self) -> None:
        command = AcquireLease(job_id=self.holder, holder=self.holder, count=1, wait=False)
        try:
            body, rejected = await self._send("acquire", command)
            reply = rejected or codec.lease_reply.decode(body)
        except UNREACHABLE:
            log.debug("gpu_broker_unreachable")  # no broker here: the CPU it is
            return
        except Exception as e:  # noqa: BLE001 - a broker answer we cannot read: stay on the CPU
            log.warning("lease_acquire_failed", error=str(e))
            return
        if not isinstance(reply, LeaseAccepted):
            log.info("inference_on_cpu", reason=reply.message, code=reply.code)
            return
        if not any(d.kind == "gpu" for d in reply.devices):
            # A CPU slot gains inference nothing and would keep a trainer waiting: give it
            # back at once, and ask again only much later (GPUs do not come and go often).
            self._last_try = time.monotonic() + self.no_gpu_backoff - self.retry_after
            with contextlib.suppress(Exception):
                release = ReleaseLease(lease_id=reply.lease_id, holder=self.holder)
                await self._send("release", release, reply.node_id)
            log.info("inference_on_cpu", reason="the node offers CPU slots only")
            return
        self.lease = reply
        self.ctx = device_context(reply.devices)
        log.info(
            "inference_lease",
            lease_id=reply.lease_id,
            devices=[d.device_id for d in reply.devices],
            context=str(self.ctx),
        )
        self._spawn(self._hold(reply), name="hold")

    async def _hold(self, lease: LeaseAccepted) -> None:
        """Renew every ttl/3 until idle (or the lease is gone), then give it back."""
        renew = RenewLease(lease_id=lease.lease_id, holder=self.holder)
        try:
            while True:
                await asyncio.sleep(max(lease.ttl_seconds / 3, 0.05))
                if time.monotonic() - self.last_used >= self.idle_release:
                    break
                try:
                    _, rejected = await self._send("renew", renew, lease.node_id)
                except Exception as e:  # noqa: BLE001 - try again next time; the TTL decides
                    log.warning("lease_renew_failed", lease_id=lease.lease_id, error=str(e))
                    continue
                if rejected is not None:  # expired or taken over: stop using the device
                    log.warning("lease_lost", lease_id=lease.lease_id, reason=rejected.message)
                    self._drop()
                    return
        finally:
            if self.lease is lease:
                self._drop()
                with contextlib.suppress(Exception):
                    release = ReleaseLease(lease_id=lease.lease_id, holder=self.holder)
                    await self._send("release", release, lease.node_id)
                log.info("inference_lease_released", lease_id=lease.lease_id)

    def _drop(self) -> None:
        ctx, self.lease, self.ctx = self.ctx, None, mx.cpu()
        if self.on_release is not None and ctx != mx.cpu():
            self.on_release(ctx)

    async def _send(self, verb: str, command: Any, node_id: str = "") -> tuple[bytes, Any]:
        """To this node's broker (a GPU elsewhere is no use here), else the shared subject."""
        assert self.nc is not None
        node = node_id or self.node_id
        subject = subjects.gpus_node_command(node, verb) if node else _shared(verb)
        return await request(self.nc, subject, command, timeout=self.timeout)

    async def close(self) -> None:
        """Give the lease back and stop the background tasks."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def _shared(verb: str) -> str:
    return {
        "acquire": subjects.CMD_GPUS_ACQUIRE,
        "renew": subjects.CMD_GPUS_RENEW,
        "release": subjects.CMD_GPUS_RELEASE,
    }[verb]
