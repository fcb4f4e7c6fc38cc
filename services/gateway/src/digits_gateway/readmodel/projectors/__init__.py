"""One projector per event stream: `apply(tx, items)` folds a batch into the read model."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import duckdb
import msgspec

from digits_gateway.readmodel.live import LiveEvent
from digits_gateway.readmodel.projectors import datasets, gpus, metrics, models, users
from digits_proto import codec, subjects

Apply = Callable[[duckdb.DuckDBPyConnection, Sequence[tuple[int, Any]]], list[LiveEvent]]

# stream → (decoder of its events, batch apply)
PROJECTORS: dict[str, tuple[msgspec.json.Decoder[Any], Apply]] = {
    subjects.STREAM_DATASETS: (codec.dataset_events, datasets.apply),
    subjects.STREAM_MODELS: (codec.model_events, models.apply),
    subjects.STREAM_METRICS: (codec.metric_events, metrics.apply),
    subjects.STREAM_GPUS: (codec.gpu_events, gpus.apply),
    subjects.STREAM_USERS: (codec.user_events, users.apply),
}
