"""Read-model rows as small typed records (what the queries return)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import duckdb
import msgspec

Cursor = duckdb.DuckDBPyConnection


class Job(msgspec.Struct, kw_only=True):
    """A dataset or model job as the read model knows it."""

    id: str
    type: str  # dataset | model
    name: str
    status: str
    username: str
    group: str
    created: datetime
    updated: datetime
    dataset_id: str | None
    spec: dict[str, Any]
    form: dict[str, str]
    progress: float
    eta_seconds: float | None
    epoch: float | None
    error: str | None
    detail: str | None
    deleted: bool
    stream: str
    devices: list[str]
    attempt: int | None
    notes: str = ""
    tags: list[str] = []

    @property
    def running(self) -> bool:
        """DIGITS's is_running(): Initialized, Waiting or Running."""
        return self.status in ("Initialized", "Waiting", "Running")


class DatasetDetails(msgspec.Struct, kw_only=True):
    """What the build found and wrote (empty until the events arrive)."""

    folder: str | None = None
    labels: list[str] = []
    split_counts: dict[str, int] = {}
    warnings: list[str] = []
    splits: list[dict[str, Any]] = []
    image_width: int | None = None
    image_height: int | None = None
    image_channels: int | None = None
    encoding: str | None = None
    mean: dict[str, Any] | None = None
    mean_jpg: dict[str, Any] | None = None
    errors: list[dict[str, Any]] = []
    phase: str | None = None


class Snapshot(msgspec.Struct, kw_only=True):
    """One saved snapshot of a model."""

    epoch: float
    seq: int
    symbol: dict[str, Any]
    params: dict[str, Any]
    input_shape: list[int]


class MetricPoint(msgspec.Struct, kw_only=True):
    """One recorded point of a training series (all the values of one event)."""

    seq: int
    epoch: float
    iteration: int
    phase: str
    values: dict[str, float | None]
    occurred: float | None = None  # when it was measured (epoch seconds; None if not kept)


def json_column(text: str | None, default: Any) -> Any:
    """A JSON text column, decoded (`default` when empty)."""
    return msgspec.json.decode(text) if text else default


def utc(value: datetime) -> datetime:
    """A timestamp in UTC, whatever the session time zone."""
    return value.astimezone(UTC)
