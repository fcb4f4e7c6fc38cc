"""The data-parallel path: batches gathered by MXNet, several contexts, leased devices."""

from __future__ import annotations

from pathlib import Path

import msgspec
import mxnet as mx
import numpy as np
import pytest

from digits_proto.gpus import Device, LeaseAccepted
from digits_proto.models import TrainSpec
from digits_trainer.child import devices_to_contexts
from digits_trainer.config import ChildConfig, ResumeFiles, SplitFiles
from digits_trainer.data import Split, load_data, tensor_batches, to_tensors, train_batches
from digits_trainer.loop import train
from digits_trainer.process import child_devices, child_environment
from digits_trainer.reports import MetricsReport, Report, SnapshotReport
from digits_trainer.tracking import Window
from tests.trainer.toy import LABELS, toy_images, write_dataset


@pytest.fixture(scope="module")
def toy_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The toy dataset's files, written once for this module."""
    return write_dataset(tmp_path_factory.mktemp("toy"), per_class=32, val_per_class=8)


def config_for(files: dict[str, Path], tmp: Path, **spec) -> ChildConfig:
    """A LeNet job over the toy files: batch 16, two epochs, validation every half epoch."""
    defaults = dict(random_seed=3, lr_policy="fixed", batch_size=16, train_epochs=2)
    defaults["learning_rate"] = 0.002  # slow enough that later losses are not all ~0
    return ChildConfig(
        model_id="m",
        dataset_id="d",
        spec=TrainSpec(**{**defaults, "val_interval": 0.5, **spec}),
        classes=len(LABELS),
        channels=1,
        height=28,
        width=28,
        encoding="png",
        train=SplitFiles(rec=str(files["train.rec"]), idx=str(files["train.idx"])),
        val=SplitFiles(rec=str(files["val.rec"]), idx=str(files["val.idx"])),
        mean=str(files["mean.npy"]),
        snapshot_dir=str(tmp / "snapshots"),
        log_every=1,
    )


def run(config: ChildConfig, ctx: list[mx.Context]) -> list[Report]:
    """Train in this process on `ctx` and collect the reports."""
    out: list[Report] = []
    train(config, load_data(config), ctx, out.append)
    return out


def losses(reports: list[Report], phase: str) -> list[tuple[int, float]]:
    """(iteration, loss) of every metrics point of one phase."""
    return [
        (r.iteration, r.values["loss"])
        for r in reports
        if isinstance(r, MetricsReport) and r.phase == phase
    ]


@pytest.mark.parametrize("shuffle", [True, False])
def test_mxnet_gathered_batches_equal_the_numpy_batches(shuffle: bool) -> None:
    """Without crops, the NDArray batches hold exactly the NumPy path's pixels and labels, in
    the same order, also when a resumed epoch skips its first batches."""
    images, labels = toy_images(11, seed=4)
    split = Split(images=images, labels=labels)
    for skip in (0, 2):
        numpy_batches = list(train_batches(split, 8, None, 5, 1, shuffle, skip))
        mxnet_batches = list(tensor_batches(to_tensors(split), 8, 5, 1, shuffle, skip))
        assert len(mxnet_batches) == len(numpy_batches) == 5 - skip
        for (x, y, _), (xn, yn) in zip(numpy_batches, mxnet_batches, strict=True):
            assert xn.dtype == np.float32 and xn.context == mx.cpu()
            np.testing.assert_array_equal(xn.asnumpy(), x)
            np.testing.assert_array_equal(yn.asnumpy(), y)


def test_the_window_sums_loss_and_accuracy_over_folds_and_contexts() -> None:
    """Batches kept on two contexts and folded part way give the plain mean loss and accuracy."""
    window, rng = Window(), np.random.default_rng(0)
    all_losses, all_correct = [], []
    for _ in range(Window.FOLD + 3):
        parts = []
        for ctx in (mx.cpu(0), mx.cpu(1)):
            loss, out = rng.random(4), rng.random((4, 3))
            y = rng.integers(0, 3, 4).astype(np.float32)
            all_losses += loss.tolist()
            all_correct += (out.argmax(axis=1) == y).tolist()
            parts.append((mx.nd.array(loss, ctx), mx.nd.array(out, ctx), mx.nd.array(y, ctx)))
        window.add(*map(list, zip(*parts, strict=True)))
    loss, accuracy, _ = window.flush()
    assert loss == pytest.approx(np.mean(all_losses), rel=1e-5)
    assert accuracy == pytest.approx(np.mean(all_correct))


def test_two_cpu_contexts_follow_the_loss_trajectory_of_one(toy_files, tmp_path: Path) -> None:
    """Data-parallel over cpu(0) and cpu(1) (each takes half of every batch, gradients summed)
    gives the single-context run's train and validation losses within float tolerance."""
    one = run(config_for(toy_files, tmp_path / "one"), [mx.cpu(0)])
    two = run(config_for(toy_files, tmp_path / "two"), devices_to_contexts(["cpu:0", "cpu:1"]))
    for phase in ("train", "val"):
        single, parallel = losses(one, phase), losses(two, phase)
        assert [i for i, _ in parallel] == [i for i, _ in single] and len(single) >= 4
        np.testing.assert_allclose(
            [v for _, v in parallel], [v for _, v in single], rtol=1e-4, atol=1e-6
        )
    assert losses(one, "train")[-1][1] < losses(one, "train")[0][1]  # it did learn


def test_a_data_parallel_run_resumes_on_another_context_count(toy_files, tmp_path) -> None:
    """A snapshot written by a two-context run resumes on one context (a lease of another
    size) and continues the unbroken run's validation losses."""
    spec = dict(snapshot_interval=0.5)
    unbroken = run(config_for(toy_files, tmp_path / "a", **spec), [mx.cpu(0), mx.cpu(1)])
    half = next(r for r in unbroken if isinstance(r, SnapshotReport))
    resumed_config = msgspec.structs.replace(
        config_for(toy_files, tmp_path / "b", **spec),
        resume=ResumeFiles(params=half.params, state=half.state),
    )
    resumed = run(resumed_config, [mx.cpu(0)])
    per_epoch = 6  # 96 images, batch 16
    after = [(i, v) for i, v in losses(unbroken, "val") if i > half.epoch * per_epoch]
    assert [i for i, _ in losses(resumed, "val")] == [i for i, _ in after]
    np.testing.assert_allclose(
        [v for _, v in losses(resumed, "val")], [v for _, v in after], rtol=1e-4
    )


def test_leased_gpus_map_to_mxnet_gpu_contexts(monkeypatch: pytest.MonkeyPatch) -> None:
    """A lease of GPUs 2 and 5 becomes CUDA_VISIBLE_DEVICES=2,5 and child devices gpu:0,gpu:1,
    which a CUDA build of MXNet trains on as mx.gpu(0) and mx.gpu(1); a CPU lease stays on
    the CPU."""
    gpus = [Device(device_id=f"gpu-{i}", kind="gpu", index=i) for i in (2, 5)]
    lease = LeaseAccepted(lease_id="l", node_id="n", devices=gpus, threads=4, ttl_seconds=30.0)
    assert child_devices(lease) == ["gpu:0", "gpu:1"]
    env = child_environment(lease)
    assert env["CUDA_VISIBLE_DEVICES"] == "2,5" and env["OMP_NUM_THREADS"] == "4"
    monkeypatch.setattr(mx.context, "num_gpus", lambda: 2)
    assert devices_to_contexts(child_devices(lease)) == [mx.gpu(0), mx.gpu(1)]
    cpu = LeaseAccepted(
        lease_id="l",
        node_id="n",
        devices=[Device(device_id="cpu", kind="cpu", index=0)],
        threads=2,
        ttl_seconds=30.0,
    )
    assert devices_to_contexts(child_devices(cpu)) == [mx.cpu()]
    assert devices_to_contexts(["cpu:0", "cpu:1"]) == [mx.cpu(0), mx.cpu(1)]
