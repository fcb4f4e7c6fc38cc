"""A run's iteration plan: when it validates, snapshots and logs, converted as DIGITS does."""

from __future__ import annotations

import math
from typing import NamedTuple

from digits_proto.models import TrainSpec
from digits_trainer import spec as specs


class Plan(NamedTuple):
    """When things happen, in iterations, converted from the spec's epochs as DIGITS does."""

    batch_size: int
    per_epoch: int
    max_iter: int
    val_every: int  # 0 = never
    snapshot_every: int  # 0 = only the final snapshot
    log_every: int


def plan_for(spec: TrainSpec, train_size: int, log_every: int = 0) -> Plan:
    """The iteration plan of a job: DIGITS's interval conversions and its `display` rule."""
    batch_size = specs.batch_size(spec)
    per_epoch = math.ceil(train_size / batch_size)
    max_iter = per_epoch * spec.train_epochs
    display = max(1, min(max_iter // (spec.train_epochs * 8), math.ceil(5000 / batch_size)))
    return Plan(
        batch_size=batch_size,
        per_epoch=per_epoch,
        max_iter=max_iter,
        val_every=interval_iterations(spec.val_interval, per_epoch, max_iter),
        snapshot_every=interval_iterations(spec.snapshot_interval, per_epoch, max_iter),
        log_every=log_every or display,
    )


def interval_iterations(epochs: float, per_epoch: int, max_iter: int) -> int:
    """An interval in epochs as iterations (caffe_train.py): 0 never, at least 1, at most the end."""
    if epochs <= 0:
        return 0
    iterations = epochs * per_epoch
    return 1 if iterations <= 1 else min(int(iterations), max_iter)
