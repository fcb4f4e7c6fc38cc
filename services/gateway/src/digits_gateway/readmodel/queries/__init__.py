"""The only SQL the controllers run: read-model rows as small typed records."""

from digits_gateway.readmodel.queries._jobs import (
    dataset_details,
    dependents,
    devices,
    get_job,
    list_jobs,
    metric_summaries,
    metrics,
    snapshot_epochs,
    snapshots,
    status_history,
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

__all__ = [
    "Cursor",
    "DatasetDetails",
    "Job",
    "MetricPoint",
    "Snapshot",
    "changes_since",
    "dataset_details",
    "dependents",
    "devices",
    "get_job",
    "list_jobs",
    "loss_sparklines",
    "metric_events_since",
    "metric_summaries",
    "metrics",
    "snapshot_epochs",
    "snapshots",
    "status_history",
]
