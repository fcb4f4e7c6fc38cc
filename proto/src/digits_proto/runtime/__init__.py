"""Shared service plumbing (nats-py, structlog; each service's small Litestar app on uvicorn, with
prometheus_client metrics): never imports a service, MXNet or DuckDB."""

from digits_proto.runtime._archives import (
    MIN_FREE,
    ArchiveRefused,
    Member,
    check_free_space,
    extract_archive,
    list_archive,
    safe_member_path,
)
from digits_proto.runtime._blobs import (
    clear_cache,
    delete_prefix,
    fetch,
    put_bytes,
    put_file,
    put_reader,
    read_blob,
    read_bytes,
)
from digits_proto.runtime._bus import (
    CREDS_ENV,
    LEASE_TTL_SECONDS,
    NatsCredentials,
    connect,
    credentials_for,
    ensure_streams,
    stream_configs,
)
from digits_proto.runtime._datadir import check_writable
from digits_proto.runtime._disk import DEFAULT_MIN_FREE_DISK, disk_reason, min_free_disk
from digits_proto.runtime._idempotency import (
    KeyReused,
    append_created,
    create_msg_id,
    keyed_before,
    same_request,
)
from digits_proto.runtime._limits import StorageLimits, storage_limits
from digits_proto.runtime._logging import configure_logging
from digits_proto.runtime._metrics import Metrics
from digits_proto.runtime._micro import (
    ID_TOKEN,
    Conflict,
    DomainError,
    Forbidden,
    NotFound,
    command_type,
    internal_error,
    request,
    serve_endpoints,
)
from digits_proto.runtime._opstoken import OPS_SECURITY, ops_guard, ops_token
from digits_proto.runtime._replicas import (
    EXIT_NEEDS_OPERATOR,
    REPLICAS_ENV,
    RETRY_ENV,
    BusUnavailable,
    NeedsOperator,
    nats_replicas,
    publish_once,
    riding_out,
)
from digits_proto.runtime._requestid import RequestIdMiddleware, return_request_id
from digits_proto.runtime._retention import (
    SubjectHead,
    purge_step,
    purge_subject,
    subject_heads,
)
from digits_proto.runtime._service import ServiceHost, run_service
from digits_proto.runtime._settings import env_settings
from digits_proto.runtime._store import ConcurrencyError, EventStore
from digits_proto.runtime._streamcheck import NO_QUORUM, NOT_REACHABLE, StreamCheck
from digits_proto.runtime._trace import (
    Trace,
    chain,
    current_trace,
    handling,
    request_id,
    trace_headers,
    traced,
)
from digits_proto.runtime._work import GiveUp, Later, Outcome, consume_tickets, heartbeat

__all__ = [
    "CREDS_ENV",
    "DEFAULT_MIN_FREE_DISK",
    "EXIT_NEEDS_OPERATOR",
    "ID_TOKEN",
    "LEASE_TTL_SECONDS",
    "MIN_FREE",
    "NOT_REACHABLE",
    "NO_QUORUM",
    "OPS_SECURITY",
    "REPLICAS_ENV",
    "RETRY_ENV",
    "ArchiveRefused",
    "BusUnavailable",
    "ConcurrencyError",
    "Conflict",
    "DomainError",
    "EventStore",
    "Forbidden",
    "GiveUp",
    "KeyReused",
    "Later",
    "Member",
    "Metrics",
    "NatsCredentials",
    "NeedsOperator",
    "NotFound",
    "Outcome",
    "RequestIdMiddleware",
    "ServiceHost",
    "StorageLimits",
    "StreamCheck",
    "SubjectHead",
    "Trace",
    "append_created",
    "chain",
    "check_free_space",
    "check_writable",
    "clear_cache",
    "command_type",
    "configure_logging",
    "connect",
    "consume_tickets",
    "create_msg_id",
    "credentials_for",
    "current_trace",
    "delete_prefix",
    "disk_reason",
    "ensure_streams",
    "env_settings",
    "extract_archive",
    "fetch",
    "handling",
    "heartbeat",
    "internal_error",
    "keyed_before",
    "list_archive",
    "min_free_disk",
    "nats_replicas",
    "ops_guard",
    "ops_token",
    "publish_once",
    "purge_step",
    "purge_subject",
    "put_bytes",
    "put_file",
    "put_reader",
    "read_blob",
    "read_bytes",
    "request",
    "request_id",
    "return_request_id",
    "riding_out",
    "run_service",
    "safe_member_path",
    "same_request",
    "serve_endpoints",
    "storage_limits",
    "stream_configs",
    "subject_heads",
    "trace_headers",
    "traced",
]
