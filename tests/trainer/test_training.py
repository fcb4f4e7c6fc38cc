"""The MXNet side: data decoding, LeNet, the loop (learning, determinism), snapshots."""

from __future__ import annotations

from pathlib import Path

import mxnet as mx
import numpy as np
import pytest
from mxnet import gluon

from digits_proto.models import TrainSpec
from digits_trainer.checkpoints import read_checkpoint
from digits_trainer.child import devices_to_contexts
from digits_trainer.config import ChildConfig, SplitFiles
from digits_trainer.data import Split, batches, decode_image, load_data
from digits_trainer.loop import TrainingDiverged, interval_iterations, plan_for, train
from digits_trainer.nets import build_network, initializer, mean_for
from digits_trainer.reports import MetricsReport, ProgressReport, Report, SnapshotReport
from digits_trainer.solver import make_optimizer
from tests.trainer.toy import LABELS, png_bytes, toy_images, write_dataset


@pytest.fixture(scope="module")
def toy_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The toy dataset's files, written once for this module."""
    return write_dataset(tmp_path_factory.mktemp("toy"))


def config_for(files: dict[str, Path], tmp: Path, **spec) -> ChildConfig:
    """A child config over the toy files."""
    return ChildConfig(
        model_id="m",
        dataset_id="d",
        spec=TrainSpec(**{"random_seed": 7, "lr_policy": "fixed", **spec}),
        classes=len(LABELS),
        channels=1,
        height=28,
        width=28,
        encoding="png",
        train=SplitFiles(rec=str(files["train.rec"]), idx=str(files["train.idx"])),
        val=SplitFiles(rec=str(files["val.rec"]), idx=str(files["val.idx"])),
        mean=str(files["mean.npy"]),
        snapshot_dir=str(tmp / "snapshots"),
    )


def run(config: ChildConfig) -> list[Report]:
    """Train in this process on the CPU and collect the reports."""
    out: list[Report] = []
    train(config, load_data(config), [mx.cpu()], out.append)
    return out


def test_records_decode_to_the_images_that_were_packed(toy_files) -> None:
    """PNG records come back pixel for pixel, labels intact; raw `none` bytes too."""
    data = load_data(config_for(toy_files, Path(".")))
    images, labels = toy_images(40, seed=1)
    assert np.array_equal(data.train.images, images) and np.array_equal(data.train.labels, labels)
    rgb = np.random.default_rng(0).integers(0, 255, (3, 5, 4), dtype=np.uint8)
    assert np.array_equal(decode_image(png_bytes(rgb), "png", (3, 5, 4)), rgb)
    raw = rgb.transpose(1, 2, 0).tobytes()
    assert np.array_equal(decode_image(raw, "none", (3, 5, 4)), rgb)


def test_batches_shuffle_with_the_seed_and_crop_randomly_or_centered() -> None:
    """Train batches are a seeded permutation with random crops; eval is ordered, centered."""
    split = Split(
        images=np.arange(10 * 16, dtype=np.uint8).reshape(10, 1, 4, 4), labels=np.arange(10)
    )
    first = list(batches(split, 4, crop=2, rng=np.random.default_rng(3)))
    again = list(batches(split, 4, crop=2, rng=np.random.default_rng(3)))
    assert [len(y) for _, y in first] == [4, 4, 2]
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(first, again, strict=True))
    assert sorted(np.concatenate([y for _, y in first])) == list(range(10))
    (x, y), *_ = batches(split, 10, crop=2)
    assert x.dtype == np.float32 and list(y) == list(range(10))
    assert np.array_equal(x[0, 0], [[5, 6], [9, 10]])  # the center 2×2 of 0..15


def test_plan_converts_epoch_intervals_like_digits() -> None:
    """Intervals in epochs become iterations: ≥1, at most the end; 0 means never."""
    plan = plan_for(TrainSpec(train_epochs=10, val_interval=0.5, snapshot_interval=0), 640)
    assert (plan.batch_size, plan.per_epoch, plan.max_iter) == (64, 10, 100)
    assert (plan.val_every, plan.snapshot_every, plan.log_every) == (5, 0, 1)
    assert interval_iterations(0.01, 10, 100) == 1
    assert interval_iterations(50, 10, 100) == 100


def test_lenet_maps_raw_pixels_to_logits() -> None:
    """LeNet takes N×C×H×W raw pixels and returns N×classes logits, for gray and color."""
    for channels, size in ((1, 28), (3, 32)):
        mean = np.full((channels, size, size), 100, np.float32)
        net = build_network("lenet", 5, mean_for("pixel", mean, None))
        net.initialize(initializer())
        assert net(mx.nd.zeros((2, channels, size, size))).shape == (2, 5)


def test_every_solver_type_builds_and_steps() -> None:
    """Each DIGITS solver maps to an optimizer that updates weights."""
    for solver in ("SGD", "NESTEROV", "ADAGRAD", "RMSPROP", "ADADELTA", "ADAM"):
        net = gluon.nn.Dense(2)
        net.initialize()
        trainer = gluon.Trainer(net.collect_params(), make_optimizer(TrainSpec(solver_type=solver)))
        with mx.autograd.record():
            loss = net(mx.nd.ones((1, 3))).sum()
        loss.backward()
        before = net.weight.data().copy()
        trainer.step(1)
        assert not np.allclose(before.asnumpy(), net.weight.data().asnumpy()), solver


def test_loop_learns_a_separable_set_and_snapshots_a_self_contained_net(
    toy_files, tmp_path: Path
) -> None:
    """Val accuracy reaches 0.9; the exported symbol + params re-imported reproduce the output."""
    reports = run(config_for(toy_files, tmp_path, train_epochs=3, crop_size=24))
    val = [r for r in reports if isinstance(r, MetricsReport) and r.phase == "val"]
    assert [r.epoch for r in val] == [1.0, 2.0, 3.0]
    assert val[-1].values["accuracy"] >= 0.9
    train_points = [r for r in reports if isinstance(r, MetricsReport) and r.phase == "train"]
    assert train_points and set(train_points[0].values) == {"loss", "learning_rate"}
    assert [r.epoch_end for r in reports if isinstance(r, ProgressReport)][-1]
    snapshots = [r for r in reports if isinstance(r, SnapshotReport)]
    assert [s.epoch for s in snapshots] == [1.0, 2.0, 3.0]
    last = snapshots[-1]
    assert last.input_shape == [1, 24, 24]

    checkpoint, states = read_checkpoint(last.state)
    assert (checkpoint.epoch, checkpoint.iteration, checkpoint.seed) == (3.0, 6, 7)
    assert checkpoint.metrics["val_accuracy"] == val[-1].values["accuracy"] and states

    net = gluon.SymbolBlock.imports(last.symbol, ["data"], last.params, ctx=mx.cpu())
    images, labels = toy_images(10, seed=5)
    x = mx.nd.array(images[:, :, 2:26, 2:26].astype(np.float32))  # raw 0-255, center crop
    assert (net(x).argmax(axis=1).asnumpy() == labels).mean() >= 0.9


def test_same_seed_and_data_give_identical_metrics(toy_files, tmp_path: Path) -> None:
    """Two CPU runs with one random_seed report exactly the same series."""
    config = config_for(
        toy_files, tmp_path, train_epochs=1, solver_type="ADAM", learning_rate=0.001
    )
    first, second = run(config), run(config)
    series = [
        [(r.phase, r.iteration, r.values) for r in reports if isinstance(r, MetricsReport)]
        for reports in (first, second)
    ]
    assert series[0] == series[1] and len(series[0]) >= 3


def test_a_diverging_loss_stops_training_with_a_clear_error(toy_files, tmp_path: Path) -> None:
    """A NaN or infinite loss raises TrainingDiverged instead of training on garbage."""
    config = config_for(toy_files, tmp_path, train_epochs=3, learning_rate=1e12)
    with pytest.raises(TrainingDiverged, match="learning rate too high"):
        run(config)


def test_leased_gpus_fall_back_to_the_cpu_without_a_cuda_build() -> None:
    """A GPU lease on an MXNet without CUDA trains on the CPU rather than failing."""
    expected = [mx.gpu(0)] if mx.context.num_gpus() else [mx.cpu()]
    assert devices_to_contexts(["gpu:0"]) == expected
    assert devices_to_contexts(["cpu"]) == [mx.cpu()]
