"""A decision is pure: the same command on the same state, with the same clock and ids, gives
equal events every run; only the stamps a handler passes make two runs differ."""

from __future__ import annotations

from digits_proto.base import BlobRef
from digits_proto.datasets import DatasetBuilt, DatasetCreated, DatasetSpec, SplitBlobs
from digits_proto.models import AbortModel, CreateModel, DeleteModel, EditModel, TrainSpec
from digits_proto.stamps import fixed, live
from digits_trainer.domain import (
    decide_abort,
    decide_create,
    decide_delete,
    decide_edit,
    decide_wait,
    fold_dataset,
    fold_model,
)
from tests.fakes.principals import ALICE

REF = BlobRef(bucket="b", name="n")
DATASET = fold_dataset(
    [
        DatasetCreated(dataset_id="d", name="d", spec=DatasetSpec()),
        DatasetBuilt(
            dataset_id="d",
            labels=["a", "b"],
            labels_blob=REF,
            mean=REF,
            mean_jpg=REF,
            image_width=28,
            image_height=28,
            image_channels=1,
            splits=[SplitBlobs(split="train", entries=3, rec=REF, idx=REF)],
        ),
    ]
)


def every_decision(at_each) -> list:
    """Create, then wait, edit, abort and delete the job created; each with `at_each()`."""
    create = CreateModel(name="n", dataset_id="d", spec=TrainSpec(), principal=ALICE)
    created = decide_create(create, DATASET, "m", at_each())
    state = fold_model([created])
    assert state is not None
    return [
        created,
        *decide_wait(state, "Waiting for devices", at_each()),
        *decide_edit(state, EditModel(model_id="m", name="x", principal=ALICE), at_each()),
        *decide_abort(state, AbortModel(model_id="m", principal=ALICE), at_each()),
        *decide_delete(state, DeleteModel(model_id="m", principal=ALICE), at_each()),
    ]


def test_decisions_with_a_fixed_clock_are_equal_every_run() -> None:
    first, second = every_decision(fixed), every_decision(fixed)
    assert first == second
    assert {e.occurred_at for e in first} == {fixed().now}


def test_the_live_stamps_are_what_makes_two_runs_differ() -> None:
    first, second = every_decision(live), every_decision(live)
    assert [e.event_id for e in first] != [e.event_id for e in second]
