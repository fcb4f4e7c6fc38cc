"""Classify-many jobs under an Idempotency-Key: a retry gets the first job, not a second one.

The ticket of a keyed job is published with a `Nats-Msg-Id` derived from (principal, key), so a
retry racing the first request is told by JetStream's duplicate window that it lost; the winner
then records which job the key made (a small blob beside the job's status), which answers every
later retry.
"""

from __future__ import annotations

import asyncio

import msgspec
from nats.js.errors import ObjectDeletedError, ObjectNotFoundError

from digits_inference.handlers import Deps
from digits_inference.retention import KEYS
from digits_proto import subjects
from digits_proto.base import BlobRef
from digits_proto.inference import ClassifyMany, ClassifyManyQueued, many_status_name
from digits_proto.runtime import create_msg_id, put_bytes, read_bytes, same_request


class RunKey(msgspec.Struct, frozen=True, kw_only=True):
    """Which classify-many job a principal's key made, and what its request asked."""

    run_id: str
    job_id: str
    total: int
    request_digest: str = ""


def ticket_msg_id(cmd: ClassifyMany, run_id: str) -> str:
    """The ticket's `Nats-Msg-Id`: the run's own id, or one per principal and key."""
    return create_msg_id(_asker(cmd), cmd.idempotency_key) if cmd.idempotency_key else run_id


async def first_run(deps: Deps, cmd: ClassifyMany) -> ClassifyManyQueued | None:
    """The job this key already made (422 if for another request), or None."""
    try:
        raw = await read_bytes(deps.js, subjects.BUCKET_UPLOADS, _record_name(cmd))
    except (ObjectNotFoundError, ObjectDeletedError):
        return None
    record = msgspec.json.decode(raw, type=RunKey)
    same_request(record, cmd.request_digest)
    return _queued(record)


async def record(deps: Deps, cmd: ClassifyMany, run_id: str, total: int) -> None:
    """Note the job a keyed request made (after its ticket won the race)."""
    key = RunKey(run_id=run_id, job_id=cmd.job_id, total=total, request_digest=cmd.request_digest)
    await put_bytes(deps.js, subjects.BUCKET_UPLOADS, _record_name(cmd), msgspec.json.encode(key))


async def winner(deps: Deps, cmd: ClassifyMany, timeout: float = 10.0) -> ClassifyManyQueued:
    """The job of the request that won the race: its record follows its ticket at once."""
    async with asyncio.timeout(timeout):
        while (found := await first_run(deps, cmd)) is None:
            await asyncio.sleep(0.05)
    return found


def _queued(record: RunKey) -> ClassifyManyQueued:
    status = BlobRef(bucket=subjects.BUCKET_UPLOADS, name=many_status_name(record.run_id))
    return ClassifyManyQueued(
        run_id=record.run_id, job_id=record.job_id, total=record.total, status=status
    )


def _record_name(cmd: ClassifyMany) -> str:
    return f"{KEYS}{create_msg_id(_asker(cmd), cmd.idempotency_key)}.json"


def _asker(cmd: ClassifyMany) -> str:
    return cmd.principal.username if cmd.principal is not None else ""
