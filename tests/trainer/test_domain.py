"""Model and dataset folds, and the decisions on create/abort/delete/wait (no NATS)."""

from __future__ import annotations

import pytest

from digits_proto.base import BlobRef, JobStatus
from digits_proto.datasets import (
    DatasetAborted,
    DatasetBuildStarted,
    DatasetBuilt,
    DatasetCreated,
    DatasetDeleted,
    DatasetSpec,
    SplitBlobs,
)
from digits_proto.models import (
    AbortModel,
    CreateModel,
    DeleteModel,
    ModelAborted,
    ModelCreated,
    ModelDeleted,
    ModelWaiting,
    SnapshotSaved,
    TrainingCompleted,
    TrainingFailed,
    TrainingProgressed,
    TrainingStarted,
    TrainSpec,
)
from digits_proto.runtime import DomainError
from digits_proto.stamps import fixed
from digits_trainer.domain import (
    Gate,
    dataset_gate,
    decide_abort,
    decide_create,
    decide_delete,
    decide_wait,
    fold_dataset,
    fold_model,
)
from digits_trainer.spec import batch_size, check_spec, weight_decay
from tests.fakes.principals import ALICE

REF = BlobRef(bucket="b", name="n")


def created(**spec) -> ModelCreated:
    return ModelCreated(
        model_id="m", name="lenet", username="alice", dataset_id="d", spec=TrainSpec(**spec)
    )


def built(width: int = 28, height: int = 28) -> DatasetBuilt:
    split = SplitBlobs(split="train", entries=3, rec=REF, idx=REF)
    return DatasetBuilt(
        dataset_id="d",
        labels=["a", "b"],
        labels_blob=REF,
        splits=[split],
        mean=REF,
        mean_jpg=REF,
        image_width=width,
        image_height=height,
        image_channels=1,
    )


def dataset(*events) -> object:
    return fold_dataset([DatasetCreated(dataset_id="d", name="ds", spec=DatasetSpec()), *events])


def create(name: str = "my model", **spec) -> CreateModel:
    return CreateModel(name=name, dataset_id="d", spec=TrainSpec(**spec), principal=ALICE)


def test_model_status_follows_digits_lifecycle() -> None:
    """Created → Waiting → Running → Done; progress changes nothing; attempts are counted."""
    history = [created(), ModelWaiting(model_id="m", reason="Waiting for devices")]
    assert fold_model(history).status is JobStatus.WAITING
    history += [
        TrainingStarted(model_id="m"),
        TrainingProgressed(model_id="m", epoch=1, progress=0.5),
    ]
    state = fold_model(history)
    assert (state.status, state.attempts, state.waiting_reason) == (JobStatus.RUNNING, 1, "")
    history += [SnapshotSaved(model_id="m", epoch=1, symbol=REF, params=REF)]
    history += [TrainingCompleted(model_id="m")]
    state = fold_model(history)
    assert state.status is JobStatus.DONE and state.snapshots == (1.0,)
    assert (
        fold_model([created(), TrainingFailed(model_id="m", error="x")]).status is JobStatus.ERROR
    )
    assert fold_model([created(), ModelDeleted(model_id="m")]).deleted
    assert fold_model([]) is None


def test_create_accepts_a_valid_lenet_job_on_a_built_dataset() -> None:
    """Given a built dataset, CreateModel becomes ModelCreated with the new id."""
    event = decide_create(create(), dataset(built()), "new-id", at=fixed())
    assert (event.model_id, event.name, event.dataset_id) == ("new-id", "my model", "d")


def test_create_accepts_a_dataset_still_building() -> None:
    """DIGITS lets a model be created on a dataset that is still running."""
    assert (
        decide_create(
            create(), dataset(DatasetBuildStarted(dataset_id="d")), "x", at=fixed()
        ).model_id
        == "x"
    )


@pytest.mark.parametrize(
    ("ds", "message"),
    [
        (None, "Not a valid choice"),
        (dataset(DatasetAborted(dataset_id="d")), "Not a valid choice"),
        (dataset(DatasetDeleted(dataset_id="d")), "dataset d was deleted"),
    ],
)
def test_create_rejects_a_dataset_that_cannot_be_trained_on(ds, message: str) -> None:
    """An unknown, aborted or deleted dataset is refused on the `dataset` field."""
    with pytest.raises(DomainError) as err:
        decide_create(create(), ds, "x", at=fixed())
    assert (err.value.code, err.value.field, err.value.message) == (400, "dataset", message)


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"framework": "caffe"}, "framework"),
        ({"standard_network": "alexnet"}, "standard_networks"),
        ({"standard_network": "vgg"}, "standard_networks"),
        ({"method": "custom"}, "custom_network"),
        ({"method": "pretrained"}, "pretrained_networks"),
        ({"method": "torch"}, "method"),
        ({"method": "previous"}, "previous_networks"),
        ({"aug_flip": "diagonal"}, "aug_flip"),
        ({"aug_quad_rot": "rot45"}, "aug_quad_rot"),
        ({"aug_rot": 200.0}, "aug_rot"),
        ({"aug_noise": -0.1}, "aug_noise"),
        ({"aug_hsv_h": 0.6}, "aug_hsv_h"),
        ({"early_stopping_patience": -1}, "early_stopping_patience"),
        ({"solver_type": "FTRL"}, "solver_type"),
        ({"lr_policy": "cosine"}, "lr_policy"),
        ({"train_epochs": 0}, "train_epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"lr_policy": "multistep", "lr_multistep_values": "50,x"}, "lr_multistep_values"),
        ({"lr_step_size": 0.0}, "lr_step_size"),
        ({"use_mean": "median"}, "use_mean"),
        ({"crop_size": 0}, "crop_size"),
        ({"snapshot_interval": -1.0}, "snapshot_interval"),
        ({"val_interval": -0.5}, "val_interval"),
        ({"random_seed": -3}, "random_seed"),
        ({"select_gpu_count": 0}, "select_gpu_count"),
        ({"batch_accumulation": 0}, "batch_accumulation"),
    ],
)
def test_create_rejects_a_bad_spec_naming_the_form_field(spec: dict, field: str) -> None:
    """Every unsupported or out-of-range value is a 400 naming DIGITS's form field."""
    with pytest.raises(DomainError) as err:
        decide_create(create(**spec), dataset(built()), "x", at=fixed())
    assert (err.value.code, err.value.field) == (400, field)


def test_create_rejects_a_missing_name_and_a_crop_larger_than_the_images() -> None:
    """The name is required; crop_size must fit a built dataset's images."""
    with pytest.raises(DomainError) as err:
        decide_create(create(name="  "), dataset(built()), "x", at=fixed())
    assert err.value.field == "model_name"
    with pytest.raises(DomainError) as err:
        decide_create(create(crop_size=29), dataset(built()), "x", at=fixed())
    assert err.value.field == "crop_size"


def test_spec_defaults_follow_digits() -> None:
    """LeNet's batch is 64 unless given; weight decay defaults to base_lr / 100."""
    assert batch_size(TrainSpec()) == 64 and batch_size(TrainSpec(batch_size=8)) == 8
    assert weight_decay(TrainSpec(learning_rate=0.5)) == 0.005
    assert weight_decay(TrainSpec(weight_decay=0.0)) == 0.0
    check_spec(TrainSpec(solver_type="ADAM", lr_policy="multistep"))


def test_abort_only_while_the_job_may_still_change() -> None:
    """A running job is aborted; an ended one is Forbidden; a deleted one is NotFound."""
    abort = AbortModel(model_id="m", principal=ALICE)
    assert isinstance(decide_abort(fold_model([created()]), abort, at=fixed())[0], ModelAborted)
    with pytest.raises(DomainError) as err:
        decide_abort(fold_model([created(), TrainingCompleted(model_id="m")]), abort, at=fixed())
    assert (err.value.code, err.value.message) == (403, "Job not aborted")
    with pytest.raises(DomainError) as err:
        decide_abort(fold_model([created(), ModelDeleted(model_id="m")]), abort, at=fixed())
    assert err.value.code == 404


def test_delete_any_known_job_once() -> None:
    """Delete works in every status but not twice, and not on unknown ids."""
    done = fold_model([created(), TrainingCompleted(model_id="m")])
    delete = DeleteModel(model_id="m", principal=ALICE)
    assert decide_delete(done, delete, at=fixed()) == [
        ModelDeleted(model_id="m", actor="alice", event_id=ANY, occurred_at=ANY)
    ]
    with pytest.raises(DomainError):
        decide_delete(fold_model([created(), ModelDeleted(model_id="m")]), delete, at=fixed())
    with pytest.raises(DomainError):
        decide_delete(None, delete, at=fixed())


def test_dataset_gate_waits_for_done_and_aborts_on_failure() -> None:
    """Waiting while the dataset builds, ready when built, abort when it failed or vanished."""
    assert dataset_gate(dataset(DatasetBuildStarted(dataset_id="d")), "d") == (
        Gate.WAIT,
        "Waiting for dataset d",
    )
    assert dataset_gate(dataset(built()), "d")[0] is Gate.READY
    assert dataset_gate(dataset(DatasetAborted(dataset_id="d")), "d")[0] is Gate.ABORT
    assert dataset_gate(dataset(built(), DatasetDeleted(dataset_id="d")), "d")[0] is Gate.ABORT
    assert dataset_gate(None, "d")[0] is Gate.ABORT


def test_waiting_is_said_once_per_reason() -> None:
    """A redelivered ticket does not repeat the same ModelWaiting, but a new reason is said."""
    state = fold_model([created()])
    first = decide_wait(state, "Waiting for dataset d", at=fixed())
    assert [e.reason for e in first] == ["Waiting for dataset d"]
    waiting = fold_model([created(), *first])
    assert decide_wait(waiting, "Waiting for dataset d", at=fixed()) == []
    assert len(decide_wait(waiting, "Waiting for devices", at=fixed())) == 1


class _Any:
    def __eq__(self, other: object) -> bool:
        return True


ANY = _Any()


def test_a_gpu_lease_puts_pip_installed_cuda_libraries_on_the_childs_library_path(
    tmp_path, monkeypatch
):
    """nvidia/<lib>/lib folders on sys.path go first on LD_LIBRARY_PATH, only for GPU leases."""
    from digits_proto.gpus import Device, LeaseAccepted
    from digits_trainer.process import child_environment

    (tmp_path / "nvidia" / "cudnn" / "lib").mkdir(parents=True)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("LD_LIBRARY_PATH", "/opt/lib")
    monkeypatch.setenv("DIGITS_SECRET", "x")

    def lease(kind: str) -> LeaseAccepted:
        device = Device(device_id=f"n/{kind}0", kind=kind, index=0)
        return LeaseAccepted(lease_id="l", node_id="n", devices=[device], threads=2, ttl_seconds=30)

    gpu = child_environment(lease("gpu"))
    assert gpu["LD_LIBRARY_PATH"] == f"{tmp_path}/nvidia/cudnn/lib:/opt/lib"
    assert gpu["CUDA_VISIBLE_DEVICES"] == "0" and "DIGITS_SECRET" not in gpu
    assert child_environment(lease("cpu"))["LD_LIBRARY_PATH"] == "/opt/lib"


def test_the_child_keeps_host_copies_off_openmp_unless_the_environment_says_otherwise(
    monkeypatch,
):
    """MXNET_CPU_PARALLEL_SIZE is raised so the main thread never starts an OpenMP team."""
    from digits_proto.gpus import Device, LeaseAccepted
    from digits_trainer.process import child_environment

    cpu = Device(device_id="n/cpu0", kind="cpu", index=0)
    lease = LeaseAccepted(lease_id="l", node_id="n", devices=[cpu], threads=2, ttl_seconds=30)
    monkeypatch.delenv("MXNET_CPU_PARALLEL_SIZE", raising=False)
    assert child_environment(lease)["MXNET_CPU_PARALLEL_SIZE"] == str(2**31 - 1)
    monkeypatch.setenv("MXNET_CPU_PARALLEL_SIZE", "1000")
    assert child_environment(lease)["MXNET_CPU_PARALLEL_SIZE"] == "1000"
