"""The MXNet side: data decoding, LeNet, the loop (learning, determinism), snapshots."""

from __future__ import annotations

from pathlib import Path

import msgspec
import mxnet as mx
import numpy as np
import pytest
from mxnet import gluon

from digits_proto.models import TrainSpec
from digits_trainer.checkpoints import read_checkpoint
from digits_trainer.child import devices_to_contexts
from digits_trainer.config import ChildConfig, ResumeFiles, SplitFiles
from digits_trainer.data import Split, batches, decode_image, load_data
from digits_trainer.loop import TrainingDiverged, train
from digits_trainer.nets import build_model, initializer, load_matching, mean_for
from digits_trainer.networks import STANDARD, source
from digits_trainer.plan import interval_iterations, plan_for
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
        net = build_model(source("lenet"), 5, (channels, size, size), mean_for("pixel", mean, None))
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


def test_a_run_resumed_mid_epoch_reports_what_an_unbroken_run_reports(toy_files, tmp_path):
    """Weights, optimizer state, position and RNGs from a mid-epoch snapshot continue the run
    exactly: the resumed run's validation points equal the unbroken run's."""
    spec = dict(train_epochs=2, snapshot_interval=0.5, val_interval=0.5, crop_size=24)
    unbroken = run(config_for(toy_files, tmp_path / "a", aug_flip="fliplr", **spec))
    snapshots = [r for r in unbroken if isinstance(r, SnapshotReport)]
    assert [s.epoch for s in snapshots] == [0.5, 1.0, 1.5, 2.0]
    half = snapshots[0]
    resumed_config = msgspec.structs.replace(
        config_for(toy_files, tmp_path / "b", aug_flip="fliplr", **spec),
        resume=ResumeFiles(params=half.params, state=half.state),
    )
    resumed = run(resumed_config)

    def val(reports):
        return [
            (r.iteration, r.values)
            for r in reports
            if isinstance(r, MetricsReport) and r.phase == "val"
        ]

    assert val(resumed) == val(unbroken)[1:]
    train_iterations = [r.iteration for r in resumed if isinstance(r, MetricsReport)]
    assert min(train_iterations) > 1  # nothing at or before the snapshot's iteration again
    assert [s.epoch for s in resumed if isinstance(s, SnapshotReport)] == [1.0, 1.5, 2.0]


def test_fine_tuning_keeps_matching_weights_and_reinitialises_the_last_layer(tmp_path):
    """A previous job's weights load by name; a layer whose shape changed (classes) is fresh."""
    old = build_model(source("lenet"), 3, (1, 28, 28), None)
    old.initialize(initializer())
    old.hybridize()
    old(mx.nd.zeros((1, 1, 28, 28)))
    old.export(str(tmp_path / "old"), epoch=0)
    new = build_model(source("lenet"), 5, (1, 28, 28), None)
    new.initialize(initializer())
    new(mx.nd.zeros((1, 1, 28, 28)))
    fresh = load_matching(new, str(tmp_path / "old-0000.params"), [mx.cpu()])
    assert fresh == ["model_lenet_dense1_weight", "model_lenet_dense1_bias"]
    old_w = old.collect_params()["model_lenet_conv0_weight"].data().asnumpy()
    assert np.array_equal(new.collect_params()["model_lenet_conv0_weight"].data().asnumpy(), old_w)


@pytest.mark.parametrize("name", STANDARD)
def test_every_standard_network_builds_for_256_crops_and_its_small_minimum(name):
    """Each standard network maps a 3-channel input at its minimum size to logits."""
    from digits_trainer.spec import MIN_INPUT

    size = MIN_INPUT.get(name, 28)
    net = build_model(source(name), 4, (3, size, size), None)
    net.initialize(initializer())
    assert net(mx.nd.zeros((2, 3, size, size))).shape == (2, 4)


@pytest.mark.parametrize(
    "option",
    [
        {"aug_flip": "fliplrud"},
        {"aug_quad_rot": "rotall"},
        {"aug_rot": 30.0},
        {"aug_scale": 0.1},
        {"aug_noise": 0.05},
        {"aug_contrast": 0.5},
        {"aug_hsv_use": True},
    ],
)
def test_each_augmentation_keeps_shape_and_range_and_changes_pixels(option) -> None:
    """Every augmentation maps a 0-255 batch to one of the same shape and range, differently."""
    from digits_trainer.augment import augment, augmenting

    spec = TrainSpec(**option)
    assert augmenting(spec)
    x = np.random.default_rng(0).integers(0, 256, (16, 3, 12, 12)).astype(np.float32)
    out = augment(x, spec, np.random.default_rng(1))
    assert out.shape == x.shape and out.dtype == np.float32
    assert out.min() >= -1e-3 and out.max() <= 255 + 1e-3
    assert not np.allclose(out, x)
    assert np.array_equal(out, augment(x, spec, np.random.default_rng(1)))  # seeded


def test_hsv_round_trip_without_shift_is_the_identity() -> None:
    """RGB → HSV → RGB with zero shifts gives the pixels back."""
    from digits_trainer.augment import hsv_shift

    x = np.random.default_rng(0).integers(0, 256, (4, 3, 8, 8)).astype(np.float32)
    assert np.allclose(hsv_shift(x, (0.0, 0.0, 0.0), np.random.default_rng(0)), x, atol=1e-3)


def test_whitening_standardizes_each_image_inside_the_network() -> None:
    """aug_whitening makes the network see each image with mean 0 and deviation 1."""
    from digits_trainer.nets import Preprocess

    block = Preprocess(None, whiten=True)
    block.initialize()
    x = mx.nd.array(np.random.default_rng(0).uniform(0, 255, (3, 1, 6, 6)))
    out = block(x).asnumpy()
    assert np.allclose(out.mean(axis=(1, 2, 3)), 0, atol=1e-4)
    assert np.allclose(out.std(axis=(1, 2, 3)), 1, atol=1e-3)


def test_batch_accumulation_equals_one_batch_of_the_combined_size(toy_files, tmp_path) -> None:
    """Two accumulated batches of 30 update like one batch of 60: same validation loss."""
    common = dict(train_epochs=1, shuffle=False, solver_type="SGD", learning_rate=0.01)
    big = run(config_for(toy_files, tmp_path / "a", batch_size=60, **common))
    accumulated = run(
        config_for(toy_files, tmp_path / "b", batch_size=30, batch_accumulation=2, **common)
    )

    def val_loss(reports):
        return [
            r.values["loss"] for r in reports if isinstance(r, MetricsReport) and r.phase == "val"
        ]

    assert np.allclose(val_loss(big), val_loss(accumulated), rtol=1e-4)


def test_early_stopping_ends_after_patience_validations_without_progress(toy_files, tmp_path):
    """With a learning rate too small to learn, patience 2 stops after the third validation,
    with a final snapshot there."""
    reports = run(
        config_for(
            toy_files, tmp_path, train_epochs=10, learning_rate=1e-12, early_stopping_patience=2
        )
    )
    val = [r for r in reports if isinstance(r, MetricsReport) and r.phase == "val"]
    assert [r.epoch for r in val] == [1.0, 2.0, 3.0]
    assert [s.epoch for s in reports if isinstance(s, SnapshotReport)] == [1.0, 2.0, 3.0]
    last = [s for s in reports if isinstance(s, SnapshotReport)][-1]
    again = run(
        msgspec.structs.replace(
            config_for(
                toy_files,
                tmp_path / "b",
                train_epochs=10,
                learning_rate=1e-12,
                early_stopping_patience=2,
            ),
            resume=ResumeFiles(params=last.params, state=last.state),
        )
    )
    assert not [r for r in again if isinstance(r, MetricsReport)]  # stopped stays stopped


def test_retention_keeps_the_last_n_and_the_best_snapshot() -> None:
    """keep=2 keeps the two newest plus the lowest validation loss; 0 keeps everything."""
    from digits_trainer.checkpoints import retain

    kept = [(1.0, 0.5), (2.0, 0.2), (3.0, 0.4), (4.0, 0.3)]
    assert retain(kept, 2) == ([(2.0, 0.2), (3.0, 0.4), (4.0, 0.3)], [1.0])
    assert retain(kept, 0) == (kept, [])
    assert retain([(1.0, None), (2.0, None), (3.0, None)], 1) == ([(3.0, None)], [1.0, 2.0])


def test_a_run_with_snapshot_keep_reports_which_snapshots_go(toy_files, tmp_path) -> None:
    """Each snapshot names the earlier ones retention drops; the checkpoint keeps the rest."""
    reports = run(config_for(toy_files, tmp_path, train_epochs=4, snapshot_keep=1))
    snapshots = [r for r in reports if isinstance(r, SnapshotReport)]
    dropped = [e for s in snapshots for e in s.dropped]
    checkpoint, _ = read_checkpoint(snapshots[-1].state)
    kept = [epoch for epoch, _ in checkpoint.kept]
    assert sorted(dropped + kept) == [1.0, 2.0, 3.0, 4.0] and 4.0 in kept and len(kept) <= 2


def test_resnet18_trains_an_epoch_and_exports_a_self_contained_snapshot(toy_files, tmp_path):
    """ResNet-18 (thumbnail stem for small images) runs the whole loop and snapshots."""
    reports = run(config_for(toy_files, tmp_path, standard_network="resnet18", train_epochs=1))
    snapshot = [r for r in reports if isinstance(r, SnapshotReport)][-1]
    net = gluon.SymbolBlock.imports(snapshot.symbol, ["data"], snapshot.params, ctx=mx.cpu())
    assert net(mx.nd.zeros((2, 1, 28, 28))).shape == (2, len(LABELS))
