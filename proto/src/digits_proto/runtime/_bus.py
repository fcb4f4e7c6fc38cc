"""Connect to NATS and make sure every stream and bucket the system uses exists."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig

from digits_proto import subjects
from digits_proto.runtime._limits import DAY, StorageLimits, storage_limits
from digits_proto.runtime._reconcile import reconcile_all
from digits_proto.runtime._replicas import (
    NeedsOperator,
    check_replicas,
    nats_replicas,
    retry_seconds,
)

log = structlog.get_logger(__name__)

# Default lease TTL (gpu-broker setting `lease_ttl`); holders renew every third of it.
LEASE_TTL_SECONDS = 15.0


# A file with this service's NATS user and password, or a directory of `<service>.json` files.
CREDS_ENV = "DIGITS_NATS_CREDS"


class NatsCredentials(msgspec.Struct, frozen=True, kw_only=True):
    """One NATS user (a service's, or the provisioning admin's): what its `.json` file holds."""

    user: str
    password: str


def credentials_for(name: str, path: str | None = None) -> NatsCredentials | None:
    """The credentials `name` connects with: from `path`, else DIGITS_NATS_CREDS; None if unset.

    A directory holds one `<name>.json` per service; a file is this service's own. Read from the
    environment, the variable is removed there: no child process (build workers, training,
    sandboxes, imports) started later inherits where the credentials are.
    """
    path = os.environ.pop(CREDS_ENV, "") if path is None else path
    if not path:
        return None
    file = Path(path)
    if file.is_dir():
        file = file / f"{name}.json"
    try:
        return msgspec.json.decode(file.read_bytes(), type=NatsCredentials)
    except (OSError, msgspec.DecodeError) as e:
        raise SystemExit(f"{CREDS_ENV}: cannot read NATS credentials from {file}: {e}") from e


def subject_matches(pattern: str, subject: str) -> bool:
    """NATS subject matching: `*` is one token, a final `>` one or more."""
    want, got = pattern.split("."), subject.split(".")
    for i, token in enumerate(want):
        if token == ">":
            return len(got) > i
        if i >= len(got) or (token != "*" and token != got[i]):
            return False
    return len(got) == len(want)


class GuardedClient(Client):
    """nats-py's client, deaf to messages a JetStream push consumer redirected onto a subject.

    A NATS user allowed to create a consumer may name any deliver subject (nats-server does not
    hold it to the user's permissions): a compromised service could aim a stream's messages at
    another service's command endpoint or event watch. Redirected messages keep their stream
    subject, so a subscription (other than on our own inbox, where JetStream delivers to us on
    purpose) takes only messages whose subject matches what it subscribed to.
    """

    async def subscribe(self, subject: str, queue: str = "", cb=None, **kwargs: Any) -> Any:
        inbox = self._inbox_prefix.decode() + "."
        if cb is not None and not subject.startswith(inbox):
            cb = _only_matching(subject, cb)
        return await super().subscribe(subject, queue, cb, **kwargs)


def _only_matching(
    pattern: str, cb: Callable[[Msg], Awaitable[None]]
) -> Callable[[Msg], Awaitable[None]]:
    async def guarded(msg: Msg) -> None:
        if subject_matches(pattern, msg.subject):
            await cb(msg)
        else:
            log.warning("redirected_message_dropped", subscribed=pattern, subject=msg.subject)

    return guarded


async def connect(url: str, name: str, creds: NatsCredentials | None = None) -> Client:
    """Connect as `name`, retrying forever on later disconnects (a restarted NATS is found again).

    Credentials come from `creds`, else DIGITS_NATS_CREDS, else the URL (`nats://user:pw@host`).
    Replies arrive under the service's own inbox prefix: its NATS user may read only those.
    """
    creds = creds or credentials_for(name)
    auth = {"user": creds.user, "password": creds.password} if creds else {}

    async def on_error(e: Exception) -> None:
        log.warning("nats_error", error=str(e))

    async def on_disconnect() -> None:
        log.warning("nats_disconnected")

    async def on_reconnect() -> None:
        log.info("nats_reconnected")

    nc = GuardedClient()
    await nc.connect(
        servers=url.split(","),
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        connect_timeout=5,
        allow_reconnect=True,
        error_cb=on_error,
        disconnected_cb=on_disconnect,
        reconnected_cb=on_reconnect,
        inbox_prefix=subjects.inbox_prefix(name),
        **auth,
    )
    return nc


def stream_configs(
    limits: StorageLimits | None = None, replicas: int | None = None
) -> list[StreamConfig]:
    """The JetStream streams of the system (file storage: no acknowledged event is lost).

    Domain streams keep every event (a deleted job's go behind a tombstone, see `_retention`);
    progress keeps the last few per job, metrics a generous count per job, device and lease
    events a number of days (`StorageLimits`). `replicas` None: whatever exists is kept.
    """
    limits = limits or storage_limits()
    bounds: dict[str, dict[str, Any]] = {
        subjects.STREAM_PROGRESS: {"max_msgs_per_subject": limits.progress_keep or -1},
        subjects.STREAM_METRICS: {"max_msgs_per_subject": limits.metrics_per_job or -1},
        subjects.STREAM_GPUS: {"max_age": limits.gpu_events_days * DAY},
    }
    events = [
        StreamConfig(
            name=name,
            subjects=[subject],
            storage=StorageType.FILE,
            duplicate_window=120.0,
            allow_direct=True,
            discard=DiscardPolicy.OLD,
            num_replicas=replicas,
            **bounds.get(name, {}),
        )
        for name, subject in subjects.EVENT_STREAMS.items()
    ]
    work = StreamConfig(
        name=subjects.STREAM_WORK,
        subjects=[subjects.WORK],
        storage=StorageType.FILE,
        retention=RetentionPolicy.WORK_QUEUE,
        duplicate_window=120.0,
        num_replicas=replicas,
    )
    return [*events, work]


async def ensure_streams(
    js: JetStreamContext, limits: StorageLimits | None = None, replicas: int | None = None
) -> None:
    """Reconcile the streams, KV and Object Store buckets with what the system wants.

    Missing ones are created; limits and replica counts (`replicas`, else DIGITS_NATS_REPLICAS)
    are updated in place; nothing is ever deleted. A difference only an operator may resolve
    (or one this service's NATS user may not fix: only the provisioning admin updates streams)
    ends the service with NeedsOperator (exit 78), logged once as `bus_needs_operator`. A
    service whose streams are already as wanted needs nothing but the right to read their info.
    """
    try:
        replicas = nats_replicas() if replicas is None else check_replicas(replicas)
        retry_seconds()  # a wrong value refuses the start, not a write in the middle of a job
        await reconcile_all(js, stream_configs(limits, replicas), replicas)
    except NeedsOperator as e:
        log.error("bus_needs_operator", problem=str(e))
        raise
