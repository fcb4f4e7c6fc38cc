"""The dataset aggregate as given/when/then: events in, decision out, no NATS."""

from __future__ import annotations

import pytest

from digits_datasets import domain
from digits_datasets.errors import InvalidField
from digits_proto import JobStatus
from digits_proto.datasets import (
    AbortDataset,
    BlobRef,
    CreateDataset,
    DatasetAborted,
    DatasetBuildStarted,
    DatasetBuilt,
    DatasetCreated,
    DatasetDeleted,
    DatasetFailed,
    DatasetProgressed,
    DatasetSpec,
    DeleteDataset,
)
from digits_proto.runtime import Forbidden, NotFound
from digits_proto.stamps import fixed
from tests.fakes.principals import ALICE

ID = "20250101-000000-abcd"
SPEC = DatasetSpec(folder_train="/data/x")
CREATED = DatasetCreated(dataset_id=ID, name="mnist", username="alice", spec=SPEC)
ABORT = AbortDataset(dataset_id=ID, principal=ALICE)
DELETE = DeleteDataset(dataset_id=ID, principal=ALICE)
STARTED = DatasetBuildStarted(dataset_id=ID, worker="w")
REF = BlobRef(bucket="b", name="n")
BUILT = DatasetBuilt(
    dataset_id=ID,
    labels=["a", "b"],
    labels_blob=REF,
    splits=[],
    mean=REF,
    mean_jpg=REF,
    image_width=8,
    image_height=8,
    image_channels=1,
)


def given(*events) -> domain.DatasetState:
    return domain.fold(events)


@pytest.mark.parametrize(
    ("history", "status"),
    [
        ([CREATED], JobStatus.INITIALIZED),
        ([CREATED, STARTED], JobStatus.RUNNING),
        (
            [CREATED, STARTED, DatasetProgressed(dataset_id=ID, phase="train", done=1, total=2)],
            JobStatus.RUNNING,
        ),
        ([CREATED, STARTED, BUILT], JobStatus.DONE),
        ([CREATED, STARTED, DatasetFailed(dataset_id=ID, error="e")], JobStatus.ERROR),
        ([CREATED, DatasetAborted(dataset_id=ID)], JobStatus.ABORTED),
    ],
)
def test_fold_gives_digits_statuses(history, status) -> None:
    """Each event moves the status as the shared conventions say; progress changes nothing."""
    assert given(*history).status is status


def test_deleted_dataset_no_longer_exists() -> None:
    """After DatasetDeleted the dataset is gone, whatever its status was."""
    state = given(CREATED, STARTED, BUILT, DatasetDeleted(dataset_id=ID))
    assert state.deleted and not state.exists


def test_create_records_the_trimmed_name_and_spec() -> None:
    """when CreateDataset then DatasetCreated with the spec as sent."""
    then = domain.decide_create(
        ID, CreateDataset(name=" mnist ", spec=SPEC, form={"k": "v"}, principal=ALICE), at=fixed()
    )
    assert len(then) == 1 and isinstance(then[0], DatasetCreated)
    assert (then[0].name, then[0].spec, then[0].form) == ("mnist", SPEC, {"k": "v"})


@pytest.mark.parametrize(
    ("name", "changes", "field"),
    [
        ("", {}, "dataset_name"),
        ("n", {"method": "s3"}, "method"),
        ("n", {"method": "textfile"}, "textfile_train_images"),
        ("n", {"method": "upload"}, "upload_archive"),
        ("n", {"folder_pct_val": 101}, "folder_pct_val"),
        ("n", {"folder_pct_test": -1}, "folder_pct_test"),
        ("n", {"folder_pct_val": 60, "folder_pct_test": 50}, "folder_pct_val"),
        ("n", {"folder_train_min_per_class": 0}, "folder_train_min_per_class"),
        (
            "n",
            {"folder_train_max_per_class": 1, "folder_train_min_per_class": 3},
            "folder_train_max_per_class",
        ),
        ("n", {"resize_width": 0}, "resize_width"),
        ("n", {"resize_height": 9000}, "resize_height"),
        ("n", {"resize_channels": 2}, "resize_channels"),
        ("n", {"resize_mode": "stretch"}, "resize_mode"),
        ("n", {"encoding": "webp"}, "encoding"),
        ("n", {"backend": "leveldb"}, "backend"),
        ("n", {"has_val_folder": True}, "folder_val"),
        ("n", {"has_test_folder": True, "folder_test": " "}, "folder_test"),
        ("n", {"folder_val_min_per_class": 0}, "folder_val_min_per_class"),
        (
            "n",
            {"folder_test_max_per_class": 1, "folder_test_min_per_class": 2},
            "folder_test_max_per_class",
        ),
    ],
)
def test_create_refuses_bad_fields_naming_them(name: str, changes: dict, field: str) -> None:
    """Every out-of-range field is a 400 naming DIGITS's form field."""
    import msgspec

    spec = msgspec.structs.replace(SPEC, **changes)
    with pytest.raises(InvalidField) as info:
        domain.decide_create(ID, CreateDataset(name=name, spec=spec, principal=ALICE), at=fixed())
    assert info.value.field == field and info.value.code == 400


@pytest.mark.parametrize("history", [[CREATED], [CREATED, STARTED]])
def test_abort_while_queued_or_running(history) -> None:
    """given a build that may still run, when abort, then DatasetAborted."""
    then = domain.decide_abort(given(*history), ABORT, at=fixed())
    assert [(type(e), e.dataset_id) for e in then] == [(DatasetAborted, ID)]


@pytest.mark.parametrize(
    "last", [BUILT, DatasetFailed(dataset_id=ID, error="e"), DatasetAborted(dataset_id=ID)]
)
def test_abort_of_a_finished_build_is_forbidden(last) -> None:
    """given a finished build, when abort, then 403 'Job not aborted'."""
    with pytest.raises(Forbidden, match="Job not aborted"):
        domain.decide_abort(given(CREATED, STARTED, last), ABORT, at=fixed())


@pytest.mark.parametrize("history", [[], [CREATED, DatasetDeleted(dataset_id=ID)]])
def test_abort_and_delete_of_unknown_or_deleted_dataset_is_not_found(history) -> None:
    """An id never created, or deleted, is a 404 for abort and delete."""
    with pytest.raises(NotFound):
        domain.decide_abort(given(*history), ABORT, at=fixed())
    with pytest.raises(NotFound):
        domain.decide_delete(given(*history), DELETE, [], at=fixed())


def test_delete_with_dependent_models_is_forbidden_and_lists_them() -> None:
    """given models on the dataset, when delete, then 403 naming count and ids."""
    with pytest.raises(Forbidden) as info:
        domain.decide_delete(given(CREATED, STARTED, BUILT), DELETE, ["m2", "m1"], at=fixed())
    assert info.value.message == (
        f"Cannot delete dataset {ID} because 2 model(s) depend on it: m1, m2"
    )


def test_delete_without_models_appends_deleted_even_while_running() -> None:
    """given a running build and no models, when delete, then DatasetDeleted."""
    then = domain.decide_delete(given(CREATED, STARTED), DELETE, [], at=fixed())
    assert [type(e) for e in then] == [DatasetDeleted]


@pytest.mark.parametrize(
    ("history", "starts"),
    [
        ([CREATED], True),
        ([CREATED, STARTED], True),  # a redelivered ticket restarts the build
        ([CREATED, STARTED, BUILT], False),
        ([CREATED, DatasetAborted(dataset_id=ID)], False),
        ([CREATED, DatasetDeleted(dataset_id=ID)], False),
        ([], False),
    ],
)
def test_start_only_when_the_build_may_still_run(history, starts: bool) -> None:
    """A ticket for a finished, aborted, deleted or unknown dataset starts nothing."""
    then = domain.decide_start(given(*history), "w", at=fixed())
    assert bool(then) is starts
    assert all(isinstance(e, DatasetBuildStarted) for e in then)


def test_build_steps_are_recorded_only_while_running() -> None:
    """Progress/Built/Failed are appended while Running and dropped after an abort."""
    progress = DatasetProgressed(dataset_id=ID, phase="train", done=1, total=2)
    assert domain.decide_step(given(CREATED, STARTED), progress) == [progress]
    assert domain.decide_step(given(CREATED, STARTED, DatasetAborted(dataset_id=ID)), BUILT) == []
    assert domain.decide_step(given(CREATED), BUILT) == []


@pytest.mark.parametrize("backend", ["lmdb", "hdf5", "recordio"])
def test_digits_backends_are_accepted_and_recorded_as_recordio(backend: str) -> None:
    """Old scripts' lmdb/hdf5 are aliases: the recorded spec says recordio."""
    import msgspec

    spec = msgspec.structs.replace(SPEC, backend=backend)
    then = domain.decide_create(ID, CreateDataset(name="n", spec=spec, principal=ALICE), at=fixed())
    assert then[0].spec.backend == "recordio"


def test_unused_extra_folders_are_cleared() -> None:
    """A val/test folder path sent without its has_*_folder box is not kept."""
    import msgspec

    spec = msgspec.structs.replace(SPEC, folder_val="/x", has_test_folder=True, folder_test="/y")
    recorded = domain.decide_create(
        ID, CreateDataset(name="n", spec=spec, principal=ALICE), at=fixed()
    )[0].spec
    assert (recorded.folder_val, recorded.folder_test) == ("", "/y")
