"""The path of a dataset larger than its limits, through the launcher: a system whose shard size
and preload budget are 1 MiB packs real MNIST digits into several shards and trains on them
read from disk batch by batch."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.conftest import System, signed_in, start_system
from tests.e2e.flows import build_dataset, held_out_accuracy, train_model
from tests.e2e.test_mnist import digit_fields, load_mnist, write_class_folders

pytestmark = pytest.mark.e2e

PER_CLASS = 300
HELD_OUT = 100


@pytest.fixture(scope="module")
def small_limits_system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """A system of its own whose splits shard past 1 MiB and stream past 1 MiB of pixels."""
    base = tmp_path_factory.mktemp("large")
    with start_system(base, DIGITS_DATASETS_SHARD_MB="1", DIGITS_TRAINER_PRELOAD_MB="1") as s:
        yield s


def test_a_sharded_dataset_trains_streamed_and_classifies(small_limits_system: System) -> None:
    """3,000 raw digits (2.4 MB) → ≥ 2 train shards → LeNet streamed from them → ≥ 85 % held out."""
    system = small_limits_system
    (x_train, y_train), (x_test, y_test) = load_mnist()
    folder = system.root / "mnist"
    write_class_folders(folder, x_train, y_train, PER_CLASS)
    with signed_in(system, "large") as client:
        fields = digit_fields(folder)
        dataset_id = build_dataset(client, **fields, encoding="none", dataset_name="mnist-sharded")
        tasks = client.get(f"/datasets/{dataset_id}.json").json()["CreateDbTasks"]
        train = next(t for t in tasks if t["split"] == "train")
        assert train["entries"] == 2700 and train["shard_count"] >= 2, train

        model_id = train_model(
            client,
            timeout=300,
            dataset=dataset_id,
            standard_networks="lenet",
            train_epochs="3",
            solver_type="ADAM",
            learning_rate="0.001",
            lr_policy="fixed",
            random_seed="5",
            model_name="lenet-streamed",
        )
        assert "from disk batch by batch" in client.get(f"/models/{model_id}/log").text
        accuracy = held_out_accuracy(client, model_id, x_test[:HELD_OUT], y_test[:HELD_OUT])
        assert accuracy >= 0.85, f"held-out accuracy {accuracy:.3f}"
