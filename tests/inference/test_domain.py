"""Folding model and dataset events into a classification plan (pure, no NATS)."""

from __future__ import annotations

from functools import reduce

import pytest

from digits_inference import errors
from digits_inference.domain import (
    DatasetView,
    ModelView,
    choose_snapshot,
    evolve_dataset,
    evolve_model,
    plan_classification,
)
from digits_proto.base import BlobRef
from digits_proto.datasets import DatasetBuilt, DatasetCreated, DatasetDeleted, DatasetSpec
from digits_proto.models import (
    ModelCreated,
    ModelDeleted,
    ModelEdited,
    SnapshotSaved,
    TrainingProgressed,
    TrainSpec,
)


def blob(name: str) -> BlobRef:
    """A blob reference in the models bucket."""
    return BlobRef(bucket="digits-models", name=name, digest=f"SHA-256={name}")


def snapshot(epoch: float, shape: list[int] | None = None, tag: str = "") -> SnapshotSaved:
    """A SnapshotSaved of model `m`."""
    return SnapshotSaved(
        model_id="m",
        epoch=epoch,
        symbol=blob(f"m/snapshot-{epoch:g}-symbol.json{tag}"),
        params=blob(f"m/snapshot-{epoch:g}.params{tag}"),
        input_shape=[1, 24, 24] if shape is None else shape,
    )


def model(*events: object, crop_size: int | None = None) -> ModelView:
    """Given: ModelCreated (dataset `d`) followed by `events`."""
    created = ModelCreated(
        model_id="m", name="m", dataset_id="d", spec=TrainSpec(crop_size=crop_size)
    )
    return reduce(evolve_model, [created, *events], ModelView())


def dataset(*extra: object, built: bool = True) -> DatasetView:
    """Given: a 1-channel 28×28 'crop' dataset with labels a, b (built unless told)."""
    created = DatasetCreated(
        dataset_id="d",
        name="d",
        spec=DatasetSpec(
            folder_train="/x",
            resize_width=28,
            resize_height=28,
            resize_channels=1,
            resize_mode="crop",
        ),
    )
    built_event = DatasetBuilt(
        dataset_id="d",
        labels=["a", "b"],
        labels_blob=blob("l"),
        splits=[],
        mean=blob("mean"),
        mean_jpg=blob("mj"),
        image_width=28,
        image_height=28,
        image_channels=1,
    )
    events = [created, built_event, *extra] if built else [created, *extra]
    return reduce(evolve_dataset, events, DatasetView())


def test_latest_snapshot_is_chosen_when_no_epoch_is_asked() -> None:
    """Snapshots fold in epoch order and None picks the highest epoch."""
    view = model(
        snapshot(2),
        TrainingProgressed(model_id="m", epoch=2.5, progress=0.1),
        snapshot(1),
        snapshot(3),
    )
    assert [s.epoch for s in view.snapshots] == [1, 2, 3]
    assert choose_snapshot("m", view, None).epoch == 3


def test_a_snapshot_saved_again_for_the_same_epoch_replaces_the_first() -> None:
    """A resumed job that re-saves an epoch leaves one snapshot for it, the newer one."""
    view = model(snapshot(1), snapshot(1.0, tag="-again"))
    assert len(view.snapshots) == 1
    assert view.snapshots[0].params.name.endswith("-again")


def test_explicit_epoch_matches_loosely_as_a_float() -> None:
    """Epoch 2.5 is found whether asked as 2.5 or 2.5000000001."""
    view = model(snapshot(1), snapshot(2.5))
    assert choose_snapshot("m", view, 2.5000000001).epoch == 2.5


def test_unknown_or_deleted_model_is_not_found() -> None:
    """No events, or a ModelDeleted, is a 404 naming job_id."""
    for view in (ModelView(), model(snapshot(1), ModelDeleted(model_id="m"))):
        with pytest.raises(errors.JobNotFound) as info:
            choose_snapshot("m", view, None)
        assert info.value.code == 404 and info.value.field == "job_id"
        assert info.value.message == "Job not found"


def test_model_without_snapshot_is_a_conflict() -> None:
    """A model that has not finished an epoch is a 409 that says to wait."""
    with pytest.raises(errors.NoSnapshot) as info:
        choose_snapshot("m", model(), None)
    assert info.value.code == 409
    assert info.value.message == ("Model m has no snapshot yet: wait for its first epoch to finish")


def test_unknown_epoch_is_a_400_listing_the_available_ones() -> None:
    """An epoch with no snapshot names snapshot_epoch and lists the epochs that exist."""
    with pytest.raises(errors.UnknownSnapshot) as info:
        choose_snapshot("m", model(snapshot(1), snapshot(2.5)), 7)
    assert info.value.code == 400 and info.value.field == "snapshot_epoch"
    assert "1, 2.5" in info.value.message


def test_plan_takes_resize_from_the_dataset_and_crop_from_the_snapshot() -> None:
    """Resize size/mode/channels come from the dataset, the input shape from SnapshotSaved."""
    plan = plan_classification("m", model(snapshot(1)), dataset(), None)
    assert (plan.width, plan.height, plan.channels, plan.resize_mode) == (28, 28, 1, "crop")
    assert plan.input_shape == (1, 24, 24)
    assert plan.labels == ("a", "b")
    assert plan.symbol.name == "m/snapshot-1-symbol.json"


def test_plan_falls_back_to_the_model_crop_size_without_an_input_shape() -> None:
    """An older snapshot without input_shape uses ModelCreated.spec.crop_size (or no crop)."""
    assert plan_classification(
        "m", model(snapshot(1, shape=[]), crop_size=20), dataset(), None
    ).input_shape == (1, 20, 20)
    assert plan_classification("m", model(snapshot(1, shape=[])), dataset(), None).input_shape == (
        1,
        28,
        28,
    )


def test_plan_still_works_after_the_dataset_was_deleted() -> None:
    """The dataset's events still say how to preprocess; the model stays usable."""
    plan = plan_classification(
        "m", model(snapshot(1)), dataset(DatasetDeleted(dataset_id="d")), None
    )
    assert plan.labels == ("a", "b")


def test_plan_refuses_a_dataset_that_is_gone_or_never_built() -> None:
    """No dataset events, or no DatasetBuilt, is a 409."""
    for view in (DatasetView(), dataset(built=False)):
        with pytest.raises(errors.DatasetUnavailable) as info:
            plan_classification("m", model(snapshot(1)), view, None)
        assert info.value.code == 409


def test_plan_refuses_a_network_input_the_images_cannot_give() -> None:
    """A snapshot wanting 3 channels, or a crop larger than the image, is a 409."""
    for shape in ([3, 24, 24], [1, 32, 24], [24, 24]):
        with pytest.raises(errors.ShapeMismatch) as info:
            plan_classification("m", model(snapshot(1, shape=shape)), dataset(), None)
        assert info.value.code == 409


def test_a_snapshot_deleted_by_retention_cannot_be_chosen() -> None:
    """After SnapshotDeleted the epoch is gone from the choices; the others stay."""
    from digits_proto.models import SnapshotDeleted

    state = ModelView()
    for event in (snapshot(1.0), snapshot(2.0), SnapshotDeleted(model_id="m", epoch=1.0)):
        state = evolve_model(state, event)
    assert [s.epoch for s in state.snapshots] == [2.0]


def test_a_rename_changes_the_name_and_notes_alone_change_nothing() -> None:
    """ModelEdited with a name renames (downloads' info.json follow); notes only keep the view."""
    renamed = model(snapshot(1), ModelEdited(model_id="m", name="lenet v2"))
    assert renamed.name == "lenet v2" and renamed.snapshots
    noted = model(ModelEdited(model_id="m", notes="n"))
    assert noted.name == "m" and noted.status == "Initialized"


def test_status_events_set_the_status_by_their_type() -> None:
    """Each status event sets DIGITS's status; a later one replaces it."""
    from digits_proto.models import ModelWaiting, TrainingCompleted, TrainingStarted

    assert model(ModelWaiting(model_id="m", reason="r")).status == "Waiting"
    assert model(TrainingStarted(model_id="m", attempt=1)).status == "Running"
    done = model(TrainingStarted(model_id="m", attempt=1), TrainingCompleted(model_id="m"))
    assert done.status == "Done"
