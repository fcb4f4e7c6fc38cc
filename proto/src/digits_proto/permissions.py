"""Who may publish and subscribe to what on the bus: one row per service, derived from `subjects`.

The embedded nats-server's config and `digits nats-config` render this table; nothing else spells
a permission. A too-narrow row shows up as a timeout, a too-wide one as a hole: the table tests
try every subject a service must not publish with that service's credentials.
"""

from __future__ import annotations

from dataclasses import dataclass

from digits_proto import subjects as s

API = "$JS.API"


@dataclass(frozen=True)
class Grant:
    """One service's NATS permissions: `allow` lists (everything else is refused)."""

    user: str
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    # Replies it may send per request received (nats.micro endpoints, $SRV pings, the trainer's
    # live log): one, or one per nats.micro service it registers (all answer a $SRV ping).
    allow_responses: int = 1
    # Refused even where an `allow` wildcard matches: other services' durable consumers.
    deny_publish: tuple[str, ...] = ()


# Every stream the system creates (events, work, KV, objects), as JetStream names them.
KV_STREAMS = tuple(f"KV_{b}" for b in (s.KV_LEASES, s.KV_QUEUE))
OBJECT_STREAMS = tuple(f"OBJ_{b}" for b in (s.BUCKET_DATASETS, s.BUCKET_MODELS, s.BUCKET_UPLOADS))
ALL_STREAMS = (*s.EVENT_STREAMS, s.STREAM_WORK, *KV_STREAMS, *OBJECT_STREAMS)


def _read_stream(stream: str) -> list[str]:
    """Load an aggregate or a message: stream info, get by sequence or last-by-subject."""
    return [
        f"{API}.STREAM.MSG.GET.{stream}",
        f"{API}.DIRECT.GET.{stream}",
        f"{API}.DIRECT.GET.{stream}.>",
    ]


def _ephemeral_consumers(stream: str) -> list[str]:
    """Ordered consumers and the blob reader's pull consumer (unnamed, created on demand)."""
    return [
        f"{API}.CONSUMER.CREATE.{stream}",
        f"{API}.CONSUMER.*.{stream}.>",
        f"{API}.CONSUMER.MSG.NEXT.{stream}.>",
        f"$JS.FC.{stream}.>",
        f"$JS.ACK.{stream}.>",
    ]


def _durable(stream: str, durable: str) -> list[str]:
    """One named durable consumer: create, read, fetch from and ack only that one."""
    return [
        f"{API}.CONSUMER.*.{stream}.{durable}",
        f"{API}.CONSUMER.*.{stream}.{durable}.>",
        f"{API}.CONSUMER.DURABLE.CREATE.{stream}.{durable}",
        f"{API}.CONSUMER.MSG.NEXT.{stream}.{durable}",
        f"$JS.ACK.{stream}.{durable}.>",
    ]


def _objects(bucket: str, write: bool) -> list[str]:
    """Read (or also write and delete) an Object Store bucket."""
    stream = f"OBJ_{bucket}"
    rights = _read_stream(stream) + _ephemeral_consumers(stream)
    if write:
        rights += [f"$O.{bucket}.>", f"{API}.STREAM.PURGE.{stream}"]
    return rights


def _purge(*streams: str) -> list[str]:
    """Purge (by subject) these streams: a deleted job's messages after the retention window."""
    return [f"{API}.STREAM.PURGE.{stream}" for stream in streams]


def _kv(bucket: str) -> list[str]:
    """Read, write and watch a KV bucket."""
    stream = f"KV_{bucket}"
    return [f"$KV.{bucket}.>", *_read_stream(stream), *_ephemeral_consumers(stream)]


def _micro(service: str) -> list[str]:
    """Discovery subjects a nats.micro service answers ($SRV.PING / INFO / STATS)."""
    return ["$SRV.*", f"$SRV.*.{service}", f"$SRV.*.{service}.*"]


def _commands(context: str) -> list[str]:
    """Every `digits.cmd.<context>.<verb>` constant in `subjects`."""
    prefix = f"digits.cmd.{context}."
    return sorted(v for k, v in vars(s).items() if k.startswith("CMD_") and v.startswith(prefix))


# Every service may read any stream's info: `ensure_streams` checks that the provisioned streams
# exist before a service starts (only the provisioning user creates or changes one). Stream names
# are how nats-py finds the stream behind a subject (an Object Store listing, a KV watch).
_INFO = [f"{API}.STREAM.INFO.{stream}" for stream in ALL_STREAMS] + [f"{API}.STREAM.NAMES"]

# Blob reads/writes every service needs: uploads are the shared scratch bucket.
_BLOBS_READ_ALL = [
    *_objects(s.BUCKET_DATASETS, write=False),
    *_objects(s.BUCKET_MODELS, write=False),
    *_objects(s.BUCKET_UPLOADS, write=True),
]


# Every durable consumer and its owner. Ephemeral consumer rights are per stream (nats-py names
# ordered consumers at random), so each service is denied the durables of the others.
DURABLES: dict[tuple[str, str], str] = {
    **{(st, s.readmodel_consumer(st)): s.SERVICE_GATEWAY for st in s.EVENT_STREAMS},
    (s.STREAM_WORK, s.CONSUMER_DATASET_BUILDER): s.SERVICE_DATASETS,
    (s.STREAM_WORK, s.CONSUMER_TRAINER): s.SERVICE_TRAINER,
    (s.STREAM_WORK, s.CONSUMER_CLASSIFIER): s.SERVICE_INFERENCE,
}


def _others_durables(service: str) -> tuple[str, ...]:
    return tuple(
        right
        for (stream, durable), owner in DURABLES.items()
        if owner != service
        for right in (
            f"{API}.CONSUMER.*.{stream}.{durable}",
            f"{API}.CONSUMER.*.{stream}.{durable}.>",
            f"{API}.CONSUMER.MSG.NEXT.{stream}.{durable}",
            f"$JS.ACK.{stream}.{durable}.>",
        )
    )


def _grant(service: str, publish: list[str], subscribe: list[str], responses: int = 1) -> Grant:
    return Grant(
        user=service,
        publish=tuple(dict.fromkeys([*_INFO, *publish])),
        subscribe=tuple(dict.fromkeys([f"{s.inbox_prefix(service)}.>", *subscribe])),
        allow_responses=responses,
        deny_publish=_others_durables(service),
    )


def _gateway() -> Grant:
    backends = [cmd for c in ("datasets", "models", "inference") for cmd in _commands(c)]
    readmodel = [
        right
        for stream in s.EVENT_STREAMS
        for right in _read_stream(stream) + _durable(stream, s.readmodel_consumer(stream))
    ]
    return _grant(
        s.SERVICE_GATEWAY,
        publish=[
            s.USER_EVENTS,
            *backends,
            *(s.micro_ping(name) for name in s.BACKEND_SERVICES),
            s.model_log("*"),
            *readmodel,
            *_ephemeral_consumers(s.STREAM_METRICS),  # replaying one job's metrics
            *_ephemeral_consumers(s.STREAM_USERS),
            # /api/v1/events reads the served streams through consumers of its own.
            *(r for stream in CONSUMER_STREAMS for r in _ephemeral_consumers(stream)),
            *_BLOBS_READ_ALL,
        ],
        subscribe=[s.TELEMETRY_ALL],
    )


def _datasets() -> Grant:
    return _grant(
        s.SERVICE_DATASETS,
        publish=[
            s.DATASET_EVENTS,
            s.dataset_progress("*"),
            s.WORK_BUILD_DATASET,
            *_read_stream(s.STREAM_DATASETS),
            *_ephemeral_consumers(s.STREAM_DATASETS),  # deleted datasets due for their purge
            *_purge(s.STREAM_DATASETS, s.STREAM_PROGRESS),
            *_durable(s.STREAM_WORK, s.CONSUMER_DATASET_BUILDER),
            *_read_stream(s.STREAM_MODELS),
            *_ephemeral_consumers(s.STREAM_MODELS),  # which models use a dataset
            *_objects(s.BUCKET_DATASETS, write=True),
            *_objects(s.BUCKET_UPLOADS, write=True),
        ],
        subscribe=[
            *_commands("datasets"),
            *_micro(s.SERVICE_DATASETS),
            s.dataset_events("*"),  # a build watches its own dataset for an abort
        ],
    )


def _trainer() -> Grant:
    return _grant(
        s.SERVICE_TRAINER,
        publish=[
            s.MODEL_EVENTS,
            s.METRIC_EVENTS,
            s.model_progress("*"),
            s.WORK_TRAIN_MODEL,
            *_commands("gpus"),
            s.gpus_node_command("*", "*"),
            *_read_stream(s.STREAM_MODELS),
            *_read_stream(s.STREAM_METRICS),
            *_ephemeral_consumers(s.STREAM_MODELS),  # deleted jobs due for their purge
            # A deleted model's metrics, progress and (after the retention window) events go.
            *_purge(s.STREAM_METRICS, s.STREAM_MODELS, s.STREAM_PROGRESS),
            *_read_stream(s.STREAM_DATASETS),
            *_durable(s.STREAM_WORK, s.CONSUMER_TRAINER),
            *_objects(s.BUCKET_MODELS, write=True),
            *_objects(s.BUCKET_DATASETS, write=False),
            *_objects(s.BUCKET_UPLOADS, write=True),
        ],
        subscribe=[
            *_commands("models"),
            *_micro(s.SERVICE_TRAINER),
            s.model_events("*"),  # a running job watches its own model for an abort
            s.model_log("*"),  # and answers for its live log
            s.GPU_QUEUE_EVENTS,  # places in the device queue: how soon a waiting job asks again
        ],
    )


def _inference() -> Grant:
    return _grant(
        s.SERVICE_INFERENCE,
        publish=[
            s.WORK_CLASSIFY_MANY,
            *_commands("gpus"),
            s.gpus_node_command("*", "*"),
            *_read_stream(s.STREAM_MODELS),
            *_read_stream(s.STREAM_DATASETS),
            *_durable(s.STREAM_WORK, s.CONSUMER_CLASSIFIER),
            *_BLOBS_READ_ALL,
        ],
        subscribe=[*_commands("inference"), *_micro(s.SERVICE_INFERENCE)],
    )


def _gpu_broker() -> Grant:
    return _grant(
        s.SERVICE_GPU_BROKER,
        publish=[
            s.GPU_EVENTS,
            s.TELEMETRY_ALL,
            *_read_stream(s.STREAM_GPUS),
            *_kv(s.KV_LEASES),
            *_kv(s.KV_QUEUE),
        ],
        subscribe=[
            *_commands("gpus"),
            s.gpus_node_command("*", "*"),
            *_micro(s.SERVICE_GPU_BROKER),
            s.MODEL_EVENTS,  # a deleted or finished job leaves the device queue
        ],
        # Two nats.micro services (the shared commands and the node's own) both answer a $SRV
        # ping; nats-server 2.15 refused the second answer with max 2 and passes it with 3.
        responses=3,
    )


# What outside consumers may read (their own credentials, `digits consumer-creds NAME`, and the
# gateway's /api/v1/events): the domain and metrics streams. Never DIGITS_USERS (password and
# token hashes), the work queue, KV or Object Store buckets.
CONSUMER_STREAMS = (
    s.STREAM_DATASETS,
    s.STREAM_MODELS,
    s.STREAM_METRICS,
    s.STREAM_PROGRESS,
    s.STREAM_GPUS,
)
CONSUMER_PREFIX = "consumer-"


def is_consumer(user: str) -> bool:
    """True for an outside consumer's NATS user (`consumer-NAME`)."""
    return user.startswith(CONSUMER_PREFIX)


def consumer_grant(user: str) -> Grant:
    """An outside consumer's read-only row: its own consumers (durable or not) and direct gets on
    the served streams, replies under its own inbox prefix, and no `digits.` subject at all.

    Consumer names cannot be limited by prefix (NATS wildcards match whole tokens), so consumers
    sharing a server may see or delete each other's; the system's own durables are denied.
    """
    rights = [f"{API}.STREAM.NAMES"]
    for stream in CONSUMER_STREAMS:
        rights += [
            f"{API}.STREAM.INFO.{stream}",
            *_read_stream(stream),
            *_ephemeral_consumers(stream),
            f"{API}.CONSUMER.DURABLE.CREATE.{stream}.*",
        ]
    return Grant(
        user=user,
        publish=tuple(dict.fromkeys(rights)),
        subscribe=(f"{s.inbox_prefix(user)}.>",),
        deny_publish=_others_durables(user),
    )


TABLE: dict[str, Grant] = {
    g.user: g for g in (_gateway(), _datasets(), _trainer(), _inference(), _gpu_broker())
}
