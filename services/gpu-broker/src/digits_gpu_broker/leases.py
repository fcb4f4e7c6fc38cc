"""KV-backed device claims: create to claim, CAS update to renew, CAS delete to release; TTL expiry."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Mapping, Sequence

import msgspec
import structlog
from nats.js.errors import APIError, KeyNotFoundError, KeyWrongLastSequenceError, NoKeysError
from nats.js.kv import KeyValue

from digits_gpu_broker.domain import Holding, LeaseRecord, Snapshot

log = structlog.get_logger(__name__)

_record = msgspec.json.Decoder(LeaseRecord)


def ttl_header_seconds(ttl: float) -> int:
    """The per-message TTL actually written: nats-py sends whole seconds, the server needs >= 1."""
    return max(1, math.ceil(ttl))


class LeaseBook:
    """One node's device keys (`<node_id>.<device_id>`) in the leases bucket.

    The KV is the only truth: a device is granted when `create` of its key succeeds, and every
    write carries a per-message TTL so a holder that stops renewing loses the device by itself.
    """

    def __init__(self, kv: KeyValue, node_id: str, device_ids: Sequence[str], ttl: float):
        self.kv = kv
        self.node_id = node_id
        self.device_ids = list(device_ids)
        self.ttl = ttl_header_seconds(ttl)

    def key(self, device_id: str) -> str:
        """The KV key of one device of this node."""
        return f"{self.node_id}.{device_id}"

    async def snapshot(self) -> Snapshot:
        """Who holds which device right now (free devices are absent)."""
        entries = await asyncio.gather(*(self._get(d) for d in self.device_ids))
        return {d: h for d, h in zip(self.device_ids, entries, strict=True) if h is not None}

    async def _get(self, device_id: str) -> Holding | None:
        try:
            entry = await self.kv.get(self.key(device_id))
        except KeyNotFoundError:  # also KeyDeletedError: released, or never claimed
            return None
        assert entry.revision is not None
        try:
            record: LeaseRecord | None = _record.decode(entry.value or b"")
        except msgspec.DecodeError:
            # Someone wrote junk there: treat the device as busy rather than grant it.
            log.warning("lease_value_unreadable", key=self.key(device_id))
            record = None
        return Holding(record=record, revision=entry.revision)

    async def claim(self, record: LeaseRecord) -> bool:
        """Create every device key of the lease, or none: on a lost race roll back and say False."""
        value = msgspec.json.encode(record)
        created: dict[str, int] = {}
        for device_id in record.devices:
            try:
                created[device_id] = await self.kv.create(
                    self.key(device_id), value, msg_ttl=self.ttl
                )
            except (KeyWrongLastSequenceError, KeyNotFoundError):
                # KeyNotFoundError: nats-py's create re-reads a key it found taken, which can
                # expire in between; either way someone else got there first.
                await self.release(created)
                return False
        return True

    async def renew(self, record: LeaseRecord, revisions: Mapping[str, int]) -> bool:
        """CAS-rewrite every key of the lease with a fresh TTL; False if any key changed or expired."""
        value = msgspec.json.encode(record)
        try:
            for device_id, revision in revisions.items():
                # KeyValue.update() takes no msg_ttl in nats-py 2.16; _update is what it calls.
                await self.kv._update(  # pyright: ignore[reportPrivateUsage]
                    self.key(device_id), value, last=revision, msg_ttl=self.ttl
                )
        except KeyWrongLastSequenceError:
            return False
        return True

    async def release(self, revisions: Mapping[str, int]) -> None:
        """CAS-delete keys (a key rewritten by someone else since is left alone)."""
        for device_id, revision in revisions.items():
            with contextlib.suppress(APIError):
                await self.kv.delete(self.key(device_id), last=revision)


async def all_leases(kv: KeyValue) -> list[LeaseRecord]:
    """Every lease on every node right now (for the per-user cap), one record per device key."""
    try:
        keys = await kv.keys()
    except NoKeysError:
        return []
    out = []
    for key in keys:
        with contextlib.suppress(KeyNotFoundError, msgspec.DecodeError):
            entry = await kv.get(key)
            out.append(_record.decode(entry.value or b""))
    return out
