"""Connect to NATS and make sure every stream and bucket the system uses exists."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec
import nats
import structlog
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import (
    KeyValueConfig,
    ObjectStoreConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import BadRequestError, BucketNotFoundError, NotFoundError

from digits_proto import subjects

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

    return await nats.connect(
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


def stream_configs() -> list[StreamConfig]:
    """The JetStream streams of the system (file storage: no acknowledged event is lost)."""
    events = [
        StreamConfig(
            name=name,
            subjects=[subject],
            storage=StorageType.FILE,
            duplicate_window=120.0,
            allow_direct=True,
        )
        for name, subject in subjects.EVENT_STREAMS.items()
    ]
    work = StreamConfig(
        name=subjects.STREAM_WORK,
        subjects=[subjects.WORK],
        storage=StorageType.FILE,
        retention=RetentionPolicy.WORK_QUEUE,
        duplicate_window=120.0,
    )
    return [*events, work]


async def ensure_streams(js: JetStreamContext) -> None:
    """Create the streams, KV and Object Store buckets if missing (idempotent, race-safe).

    Only what is missing or configured differently is created or updated: a service whose NATS
    user may read stream info but not create streams (the embedded launcher provisions them
    with its admin user first) passes through when everything is in place.
    """
    for config in stream_configs():
        try:
            info = await js.stream_info(config.name or "")
            if _same(info.config, config):
                continue
            await js.update_stream(config)
        except NotFoundError:
            try:
                await js.add_stream(config)
            except BadRequestError:  # created meanwhile by another service
                await js.update_stream(config)
    for bucket in (subjects.BUCKET_DATASETS, subjects.BUCKET_MODELS, subjects.BUCKET_UPLOADS):
        try:
            await js.object_store(bucket)
        except BucketNotFoundError:
            await js.create_object_store(bucket, config=ObjectStoreConfig(storage=StorageType.FILE))
    # No bucket max_age: every lease write carries its own TTL (Nats-TTL; nats-py enables
    # allow_msg_ttl on KV buckets), so the broker's TTL setting alone decides expiry, and
    # delete markers (one per device key) stay.
    for bucket in (subjects.KV_LEASES, subjects.KV_QUEUE):
        try:
            await js.key_value(bucket)
        except BucketNotFoundError:
            await js.create_key_value(KeyValueConfig(bucket=bucket, history=1))


def _same(actual: StreamConfig, wanted: StreamConfig) -> bool:
    """The fields `stream_configs` sets agree (the server fills in the rest)."""
    names = ("subjects", "retention", "storage", "duplicate_window", "allow_direct")
    return all(
        getattr(wanted, n) is None or getattr(actual, n) == getattr(wanted, n) for n in names
    )
