"""The shared device queue and node registry in the `digits-queue` KV bucket, keys with a TTL.

A waiting job's key (`job.<job_id>`) lives as long as its holder keeps asking; a node's key
(`node.<node_id>`) as long as its broker keeps sweeping. Every broker reads the same keys, so the
queue survives broker restarts and is one queue across nodes. A cordoned device's key
(`cordon.<node_id>.<device_id>`) has no TTL: it stays until an operator uncordons the device.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import msgspec
import nats.errors
import structlog
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from digits_gpu_broker.leases import ttl_header_seconds
from digits_gpu_broker.order import Waiting
from digits_proto.gpus import Device

log = structlog.get_logger(__name__)

_waiting = msgspec.json.Decoder(Waiting)
_devices = msgspec.json.Decoder(list[Device])
JOB, NODE, CORDON = "job.", "node.", "cordon."


class Waitlist:
    """Waiting acquire requests and live nodes, mirrored in memory from a watch of the bucket.

    The mirror forgets a key `ttl` after the last write it saw: the server removes expired keys
    without telling watchers, and a receipt time needs no clock shared between machines.
    """

    def __init__(self, kv: KeyValue, ttl: float, node_ttl: float = 3.0):
        self.kv = kv
        self.ttl = ttl_header_seconds(ttl)
        self.node_ttl = float(ttl_header_seconds(node_ttl))
        self._jobs: dict[str, tuple[Waiting, float]] = {}
        self._nodes: dict[str, tuple[list[Device], float, float]] = {}
        self._cordons: set[str] = set()  # "<node_id>.<device_id>"
        self._watcher: KeyValue.KeyWatcher | None = None

    async def start(self) -> None:
        """Read the bucket as it stands (the queue survives broker restarts), then follow it."""
        self._watcher = await self.kv.watchall()
        while (entry := await self._watcher.updates(timeout=10)) is not None:
            self._apply(entry)

    async def follow(self, stop: asyncio.Event) -> None:
        """Apply every later change until `stop` is set."""
        assert self._watcher is not None
        while not stop.is_set():
            with contextlib.suppress(TimeoutError, nats.errors.TimeoutError):
                entry = await self._watcher.updates(timeout=0.5)
                if entry is not None:
                    self._apply(entry)
        with contextlib.suppress(Exception):
            await self._watcher.stop()

    def _apply(self, entry: KeyValue.Entry) -> None:
        key, now = entry.key, time.monotonic()
        deleted = entry.operation in ("DEL", "PURGE")
        try:
            if key.startswith(JOB):
                if deleted:
                    self._jobs.pop(key.removeprefix(JOB), None)
                else:
                    waiting = _waiting.decode(entry.value or b"")
                    if not waiting.since:
                        waiting = msgspec.structs.replace(waiting, since=entry.revision or 0)
                    self._jobs[waiting.job_id] = (waiting, now)
            elif key.startswith(CORDON):
                (self._cordons.discard if deleted else self._cordons.add)(key.removeprefix(CORDON))
            elif key.startswith(NODE):
                node_id = key.removeprefix(NODE)
                if deleted:
                    self._nodes.pop(node_id, None)
                else:
                    self._nodes[node_id] = (_devices.decode(entry.value or b""), now, self.node_ttl)
        except (msgspec.DecodeError, ValueError):
            log.warning("queue_value_unreadable", key=key)

    async def ask(self, entry: Waiting) -> Waiting:
        """Join the queue, or refresh the place already held (its `since` is kept).

        A place written less than a third of the TTL ago, by the same holder and unchanged,
        is left as it is: hundreds of waiting jobs asking again cost no write each.
        """
        key = JOB + entry.job_id
        held = self._jobs.get(entry.job_id)
        if held is not None and time.monotonic() - held[1] < self.ttl / 3:
            same = msgspec.structs.replace(entry, since=held[0].since)
            if held[0].since and same == held[0]:
                return held[0]
        for _ in range(3):
            try:
                found = await self.kv.get(key)
            except KeyNotFoundError:
                found = None
            if found is not None:
                with contextlib.suppress(msgspec.DecodeError):
                    since = _waiting.decode(found.value or b"").since or found.revision or 0
                    stored = msgspec.structs.replace(entry, since=since)
                    await self._write(key, stored, None)
                    self._jobs[entry.job_id] = (stored, time.monotonic())
                    return stored
            try:
                revision = await self.kv.create(key, msgspec.json.encode(entry), msg_ttl=self.ttl)
            except (KeyWrongLastSequenceError, KeyNotFoundError):
                continue  # another broker created it meanwhile: read it again
            stored = msgspec.structs.replace(entry, since=revision)
            with contextlib.suppress(KeyWrongLastSequenceError):
                await self._write(key, stored, revision)
            self._jobs[entry.job_id] = (stored, time.monotonic())
            return stored
        return entry

    async def _write(self, key: str, entry: Waiting, last: int | None) -> None:
        value = msgspec.json.encode(entry)
        if last is None:
            await put_with_ttl(self.kv, key, value, self.ttl)
        else:
            # KeyValue.update() takes no msg_ttl in nats-py 2.16; _update is what it calls.
            await self.kv._update(key, value, last=last, msg_ttl=self.ttl)  # pyright: ignore

    async def withdraw(self, job_id: str) -> None:
        """Leave the queue (granted, aborted or deleted)."""
        self._jobs.pop(job_id, None)
        with contextlib.suppress(KeyNotFoundError):
            await self.kv.delete(JOB + job_id)

    def entries(self) -> list[Waiting]:
        """Every waiting request still asking, in no particular order."""
        now = time.monotonic()
        for job_id, (_, seen) in list(self._jobs.items()):
            if now - seen > self.ttl:
                del self._jobs[job_id]
        return [waiting for waiting, _ in self._jobs.values()]

    async def cordon(self, node_id: str, device_id: str) -> None:
        """Never grant this device again until `uncordon` (leases it holds run on)."""
        await self.kv.put(f"{CORDON}{node_id}.{device_id}", b"{}")  # no TTL: kept for good
        self._cordons.add(f"{node_id}.{device_id}")

    async def uncordon(self, node_id: str, device_id: str) -> None:
        """Grant the device again."""
        with contextlib.suppress(KeyNotFoundError):
            await self.kv.delete(f"{CORDON}{node_id}.{device_id}")
        self._cordons.discard(f"{node_id}.{device_id}")

    def cordoned(self, node_id: str) -> set[str]:
        """The device ids of `node_id` that are cordoned."""
        prefix = node_id + "."
        return {c.removeprefix(prefix) for c in self._cordons if c.startswith(prefix)}

    async def announce_node(self, node_id: str, devices: list[Device]) -> None:
        """Say this node is alive and what it offers (until `node_ttl` passes without another)."""
        value = msgspec.json.encode(devices)
        await put_with_ttl(self.kv, NODE + node_id, value, int(self.node_ttl))
        self._nodes[node_id] = (devices, time.monotonic(), self.node_ttl)

    def nodes(self) -> dict[str, list[Device]]:
        """The live nodes and their devices."""
        now = time.monotonic()
        return {n: devs for n, (devs, seen, ttl) in self._nodes.items() if now - seen <= ttl}


async def put_with_ttl(kv: KeyValue, key: str, value: bytes, ttl: int) -> None:
    """An unconditional put with a per-message TTL (nats-py's put takes none, and its _update
    without `last` means "create")."""
    await kv._js.publish(f"{kv._pre}{key}", value, msg_ttl=ttl)  # pyright: ignore
