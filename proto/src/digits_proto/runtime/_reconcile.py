"""Bring the JetStream streams and buckets to what the system wants: create the missing, update
in place what JetStream lets change, delete nothing, and ask an operator for the rest."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, ObjectStoreConfig, StorageType, StreamConfig, StreamInfo
from nats.js.errors import APIError, NotFoundError

from digits_proto import subjects
from digits_proto.runtime._replicas import (
    REPLICAS_ENV,
    BusUnavailable,
    NeedsOperator,
    is_election,
    is_unavailable,
    riding_out,
)

log = structlog.get_logger(__name__)

# JetStream changes these in place (replicas too: it adds or drops copies and catches them up).
UPDATABLE = (
    "subjects",
    "num_replicas",
    "duplicate_window",
    "allow_direct",
    "discard",
    "max_msgs_per_subject",
    "max_age",
    "max_bytes",
)
# nats-py sets a bucket's limits from its own defaults: only the replica count is ours.
BUCKET_UPDATABLE = ("num_replicas",)
# These only by recreating the stream, which would drop its messages: an operator's call.
FIXED = ("retention", "storage")
NAME_IN_USE = 10058  # "stream name already in use with a different configuration"
# Asked more copies than there are nodes to hold them (none beyond one on a single server).
REPLICA_ERRORS = (10005, 10023, 10074)  # no suitable peers, insufficient resources, not clustered
SUBJECTS_OVERLAP = 10065
PROVISION = "run `digits nats-provision` with DIGITS_NATS_CREDS naming digits-admin's credentials"
OBJECT_BUCKETS = (subjects.BUCKET_DATASETS, subjects.BUCKET_MODELS, subjects.BUCKET_UPLOADS)
KV_BUCKETS = (subjects.KV_LEASES, subjects.KV_QUEUE)


async def reconcile_all(
    js: JetStreamContext, streams: list[StreamConfig], replicas: int | None
) -> None:
    """Every stream of `streams`, then every Object Store and KV bucket's backing stream."""
    for config in streams:
        await reconcile(js, config, lambda c=config: js.add_stream(c))
    for bucket in OBJECT_BUCKETS:
        store = ObjectStoreConfig(storage=StorageType.FILE, replicas=replicas or 1)
        await reconcile(
            js,
            StreamConfig(name=f"OBJ_{bucket}", storage=StorageType.FILE, num_replicas=replicas),
            lambda b=bucket, s=store: js.create_object_store(b, config=s),
            BUCKET_UPDATABLE,
        )
    # No bucket max_age: every lease write carries its own TTL (Nats-TTL; nats-py enables
    # allow_msg_ttl on KV buckets), so the broker's TTL setting alone decides expiry, and
    # delete markers (one per device key) stay.
    for bucket in KV_BUCKETS:
        kv = KeyValueConfig(
            bucket=bucket, history=1, storage=StorageType.FILE, replicas=replicas or 1
        )
        await reconcile(
            js,
            StreamConfig(name=f"KV_{bucket}", storage=StorageType.FILE, num_replicas=replicas),
            lambda c=kv: js.create_key_value(c),
            BUCKET_UPDATABLE,
        )


async def reconcile(
    js: JetStreamContext,
    wanted: StreamConfig,
    create: Callable[[], Awaitable[Any]],
    updatable: tuple[str, ...] = UPDATABLE,
) -> None:
    """One stream: created if missing, else its `updatable` fields updated in place where they
    differ from `wanted` (fields left None in `wanted` are whatever exists)."""
    name = wanted.name or ""
    try:
        info = await _info(js, name)
    except NotFoundError:
        info = await _create(js, name, create)
        if info is None:
            return
    actual = info.config
    fixed = _differences(actual, wanted, FIXED)
    if fixed:
        raise NeedsOperator(
            f"stream {name}: {fixed} cannot change in place (only by recreating the stream, "
            "which drops its messages): keep the system's settings, or back up (`digits "
            "backup`), delete the stream as the NATS admin and restore"
        )
    changes = {f: getattr(wanted, f) for f in updatable if _differs(actual, wanted, f)}
    if not changes:
        return
    what = _differences(actual, wanted, updatable)
    try:
        await riding_out(
            f"update of {name}",
            lambda _t: js.update_stream(actual.evolve(**changes)),
            retry=is_unavailable,
        )
    except APIError as e:
        raise NeedsOperator(_refused(name, what, e)) from None
    except Exception as e:
        if isinstance(e, BusUnavailable) or not is_election(e):
            raise  # no leader for the whole deadline: a restart may find one
        raise NeedsOperator(
            f"stream {name} differs ({what}) and this service's NATS user may not update it "
            f"(or JetStream did not answer): {PROVISION}, then start the service again"
        ) from None
    log.info("stream_updated", stream=name, changes=what)


async def _info(js: JetStreamContext, name: str) -> StreamInfo:
    # A start during a leader election waits for the new leader (NotFoundError goes through).
    return await riding_out(f"stream info of {name}", lambda t: js.stream_info(name))


async def _create(
    js: JetStreamContext, name: str, create: Callable[[], Awaitable[Any]]
) -> StreamInfo | None:
    """Create the stream; None when done, its info when it exists (made meanwhile, or by hand
    with another configuration: then it is reconciled like any other)."""
    try:
        await riding_out(f"creation of {name}", lambda _t: create(), retry=is_unavailable)
    except APIError as e:
        if e.err_code == NAME_IN_USE:
            return await _info(js, name)
        raise NeedsOperator(_refused(name, "missing", e)) from None
    except Exception as e:
        if isinstance(e, BusUnavailable) or not is_election(e):
            raise  # no leader for the whole deadline: a restart may find one
        raise NeedsOperator(
            f"stream {name} is missing and this service's NATS user may not create it "
            f"(or JetStream did not answer): {PROVISION}, then start the service again"
        ) from None
    log.info("stream_created", stream=name)
    return None


def _refused(name: str, what: str, e: APIError) -> str:
    error = f"JetStream error {e.err_code}: {e.description}"
    if e.err_code in REPLICA_ERRORS:
        advice = (
            f"set {REPLICAS_ENV} to at most the number of NATS nodes up (1 on a single "
            "server), or bring the missing nodes back"
        )
    elif e.err_code == SUBJECTS_OVERLAP:
        advice = "another stream takes these subjects: remove or rename it as the NATS admin"
    else:
        advice = "an operator must resolve it as the NATS admin"
    return f"stream {name} ({what}): {error}: {advice}"


def _differs(actual: StreamConfig, wanted: StreamConfig, field: str) -> bool:
    value = getattr(wanted, field)
    return value is not None and getattr(actual, field) != value


def _differences(actual: StreamConfig, wanted: StreamConfig, names: tuple[str, ...]) -> str:
    """'field: now → wanted, …' for every field of `names` that differs."""
    return ", ".join(
        f"{n}: {_show(getattr(actual, n))} → {_show(getattr(wanted, n))}"
        for n in names
        if _differs(actual, wanted, n)
    )


def _show(value: Any) -> str:
    return str(getattr(value, "value", value))
