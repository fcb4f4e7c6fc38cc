"""Connect to NATS and make sure every stream and bucket the system uses exists."""

from __future__ import annotations

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
from nats.js.errors import BadRequestError

from digits_proto import subjects

log = structlog.get_logger(__name__)

# Default lease TTL (gpu-broker setting `lease_ttl`); holders renew every third of it.
LEASE_TTL_SECONDS = 15.0


async def connect(url: str, name: str) -> Client:
    """Connect, retrying forever on later disconnects (a restarted NATS is found again)."""

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
    """Create the streams, KV and Object Store buckets if missing (idempotent, race-safe)."""
    for config in stream_configs():
        try:
            await js.add_stream(config)
        except BadRequestError:
            await js.update_stream(config)
    for bucket in (subjects.BUCKET_DATASETS, subjects.BUCKET_MODELS, subjects.BUCKET_UPLOADS):
        await js.create_object_store(bucket, config=ObjectStoreConfig(storage=StorageType.FILE))
    # No bucket max_age: every lease write carries its own TTL (Nats-TTL; nats-py enables
    # allow_msg_ttl on KV buckets), so the broker's TTL setting alone decides expiry, and
    # delete markers (one per device key) stay.
    await js.create_key_value(KeyValueConfig(bucket=subjects.KV_LEASES, history=1))
    await js.create_key_value(KeyValueConfig(bucket=subjects.KV_QUEUE, history=1))
