"""Fake data of the stand-in gateway for the dataset page (see fake_site.build_app): the built
dataset's Create DB tasks in the real gateway's shape (digits_gateway.views._db_task: split,
shards, bytes, per-class counts of the training AND validation splits)."""

from __future__ import annotations

from typing import Any

from tests.web.fake_site import DATASETS, DS_DONE

ROUTES: list[Any] = []

TRAIN_COUNTS = [380, 420, 375, 371, 360, 340, 377, 390, 366, 371]
VAL_COUNTS = [127, 140, 125, 124, 120, 113, 126, 130, 122, 123]


def _real_shape(task: dict[str, Any], split: str, counts: list[int], size: int) -> None:
    task.update(
        name=f"Create DB ({split})",
        split=split,
        entries=sum(counts),
        shard_count=3 if split == "train" else 1,
        rec_bytes=size,
        error_count=1 if split == "train" else 0,
        class_counts=counts,
        class_error_counts=[0, 0, 0, 1, 0, 0, 0, 0, 0, 0] if split == "train" else [0] * 10,
    )


train_task, val_task = DATASETS[DS_DONE]["CreateDbTasks"]
_real_shape(train_task, "train", TRAIN_COUNTS, 1_512_000_000)
_real_shape(val_task, "val", VAL_COUNTS, 12_400_000)
