"""The only SQL the controllers run: read-model rows as small typed records."""

from digits_gateway.readmodel.queries._audit import AuditEntry, audit_entries
from digits_gateway.readmodel.queries._idempotency import created_under_key
from digits_gateway.readmodel.queries._jobs import (
    dataset_details,
    dependents,
    devices,
    get_job,
    jobs_by_id,
    list_jobs,
    many_dataset_details,
    metric_summaries,
    metrics,
    snapshot_epochs,
    snapshots,
    status_histories,
    status_history,
    status_notes,
)
from digits_gateway.readmodel.queries._records import (
    Cursor,
    DatasetDetails,
    Job,
    MetricPoint,
    Snapshot,
)
from digits_gateway.readmodel.queries._replay import changes_since, metric_events_since
from digits_gateway.readmodel.queries._sparklines import loss_sparklines
from digits_gateway.readmodel.queries._users import (
    TokenRow,
    UserRow,
    get_user,
    list_tokens,
    list_users,
    session_ended,
    token_user,
)

__all__ = [
    "AuditEntry",
    "Cursor",
    "DatasetDetails",
    "Job",
    "MetricPoint",
    "Snapshot",
    "TokenRow",
    "UserRow",
    "audit_entries",
    "changes_since",
    "created_under_key",
    "dataset_details",
    "dependents",
    "devices",
    "get_job",
    "get_user",
    "jobs_by_id",
    "list_jobs",
    "list_tokens",
    "list_users",
    "loss_sparklines",
    "many_dataset_details",
    "metric_events_since",
    "metric_summaries",
    "metrics",
    "session_ended",
    "snapshot_epochs",
    "snapshots",
    "status_histories",
    "status_history",
    "status_notes",
    "token_user",
]
