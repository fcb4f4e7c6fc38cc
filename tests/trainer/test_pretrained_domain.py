"""A pretrained model folds like a finished job with one snapshot and no dataset."""

from __future__ import annotations

from digits_proto import subjects
from digits_proto.base import BlobRef, JobStatus
from digits_proto.models import (
    DeleteModel,
    PretrainedModelCreated,
    SnapshotSaved,
    TrainingCompleted,
)
from digits_proto.stamps import fixed
from digits_trainer.domain import decide_delete, fold_model, pick_snapshot
from tests.fakes.principals import ALICE


def blob(name: str) -> BlobRef:
    """A models-bucket reference."""
    return BlobRef(bucket=subjects.BUCKET_MODELS, name=name)


def history(custom: str = "", standard: str = "") -> list:
    """PretrainedModelCreated, its SnapshotSaved and TrainingCompleted, as the trainer appends."""
    return [
        PretrainedModelCreated(
            model_id="p",
            name="imported",
            username="alice",
            width=28,
            height=28,
            channels=1,
            labels=["a", "b"],
            standard_network=standard,
            custom_network=custom,
        ),
        SnapshotSaved(model_id="p", epoch=3.0, symbol=blob("s"), params=blob("w")),
        TrainingCompleted(model_id="p"),
    ]


def test_pretrained_model_is_done_with_its_snapshot_and_network_source():
    """Given its three events, the job is Done, pretrained, offers epoch 3 and the network."""
    state = fold_model(history(custom="def build_network(classes, input_shape): ..."))
    assert state is not None and state.pretrained and state.status is JobStatus.DONE
    assert state.dataset_id == "" and state.username == "alice"
    assert pick_snapshot(state, None).epoch == 3.0
    assert state.spec.method == "custom" and "build_network" in state.spec.custom_network
    standard = fold_model(history(standard="lenet"))
    assert standard is not None and standard.spec.standard_network == "lenet"


def test_pretrained_model_can_be_deleted_like_any_job():
    """DeleteModel's decision applies to it unchanged."""
    state = fold_model(history())
    assert [
        type(e).__name__
        for e in decide_delete(state, DeleteModel(model_id="p", principal=ALICE), at=fixed())
    ] == ["ModelDeleted"]
