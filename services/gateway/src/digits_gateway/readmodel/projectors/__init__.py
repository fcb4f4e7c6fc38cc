"""One projector per event stream: `apply(tx, items)` folds a batch into the read model."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import duckdb
import msgspec

from digits_gateway.readmodel.live import LiveEvent
from digits_gateway.readmodel.projectors import (
    audit,
    datasets,
    gpus,
    metrics,
    models,
    progress,
    users,
)
from digits_proto import codec, subjects

Apply = Callable[[duckdb.DuckDBPyConnection, Sequence[tuple[int, Any]]], list[LiveEvent]]


def _audited(stream: str, apply: Apply) -> Apply:
    """The stream's projector, then the audit rows of the same batch (same transaction)."""

    def both(tx: duckdb.DuckDBPyConnection, items: Sequence[tuple[int, Any]]) -> list[LiveEvent]:
        live = apply(tx, items)
        audit.record(tx, stream, items)
        return live

    return both


# stream → (decoder of its events, batch apply)
_OWN: dict[str, tuple[msgspec.json.Decoder[Any], Apply]] = {
    subjects.STREAM_DATASETS: (codec.dataset_events, datasets.apply),
    subjects.STREAM_MODELS: (codec.model_events, models.apply),
    subjects.STREAM_METRICS: (codec.metric_events, metrics.apply),
    subjects.STREAM_GPUS: (codec.gpu_events, gpus.apply),
    subjects.STREAM_USERS: (codec.user_events, users.apply),
    subjects.STREAM_PROGRESS: (codec.progress_events, progress.apply),
}
PROJECTORS = {
    stream: (decoder, _audited(stream, apply)) for stream, (decoder, apply) in _OWN.items()
}
