"""Inference plans a pretrained model's classification from its own event (it has no dataset)."""

from __future__ import annotations

from digits_inference.domain import ModelView, evolve_model, plan_classification
from digits_proto import subjects
from digits_proto.base import BlobRef
from digits_proto.models import PretrainedModelCreated, SnapshotSaved, TrainingCompleted


def test_pretrained_model_plans_with_its_own_resize_and_labels():
    """Resize, channels, labels and the input shape come from PretrainedModelCreated and the
    snapshot; the status is Done."""
    ref = BlobRef(bucket=subjects.BUCKET_MODELS, name="x")
    state = ModelView()
    for event in (
        PretrainedModelCreated(
            model_id="p",
            name="imported",
            width=32,
            height=30,
            channels=3,
            resize_mode="crop",
            labels=["cat", "dog"],
            crop_size=24,
        ),
        SnapshotSaved(model_id="p", epoch=1.0, symbol=ref, params=ref, input_shape=[3, 24, 24]),
        TrainingCompleted(model_id="p"),
    ):
        state = evolve_model(state, event)
    assert state.exists and state.status == "Done" and state.preprocessing is not None
    plan = plan_classification("p", state, state.preprocessing, None)
    assert (plan.width, plan.height, plan.channels) == (32, 30, 3)
    assert plan.resize_mode == "crop" and plan.labels == ("cat", "dog")
    assert plan.input_shape == (3, 24, 24)
