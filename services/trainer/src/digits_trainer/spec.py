"""Which training specs this trainer accepts, and the defaults DIGITS applies to them."""

from __future__ import annotations

from digits_proto.datasets import DatasetBuilt
from digits_proto.models import TrainSpec
from digits_trainer.errors import InvalidField
from digits_trainer.lr import POLICIES, multistep_values

FRAMEWORKS = ("mxnet",)
SOLVERS = ("SGD", "NESTEROV", "ADAGRAD", "RMSPROP", "ADADELTA", "ADAM")
MEAN_MODES = ("none", "image", "pixel")
# Standard networks this slice implements, with the batch size their DIGITS prototxt sets.
NETWORK_BATCH_SIZE = {"lenet": 64}
LATER_NETWORKS = ("alexnet", "googlenet")


def batch_size(spec: TrainSpec) -> int:
    """The batch size: the form's, else the network's default (DIGITS's lenet.prototxt: 64)."""
    return spec.batch_size or NETWORK_BATCH_SIZE.get(spec.standard_network, 16)


def weight_decay(spec: TrainSpec) -> float:
    """The weight decay: the spec's, else DIGITS's hidden Caffe default of base_lr / 100."""
    return spec.learning_rate / 100.0 if spec.weight_decay is None else spec.weight_decay


def check_spec(spec: TrainSpec) -> None:
    """Raise `InvalidField` naming the first DIGITS form field this trainer cannot honour."""
    if spec.framework not in FRAMEWORKS:
        raise InvalidField("framework", f"Framework {spec.framework!r} is not available")
    if spec.method != "standard":
        raise InvalidField("method", f"Network method {spec.method!r} is not available yet")
    if spec.standard_network in LATER_NETWORKS:
        raise InvalidField(
            "standard_networks", f"Network {spec.standard_network!r} is not available yet"
        )
    if spec.standard_network not in NETWORK_BATCH_SIZE:
        raise InvalidField("standard_networks", "Not a valid choice")
    _check_solver(spec)
    _check_intervals(spec)
    if spec.use_mean not in MEAN_MODES:
        raise InvalidField("use_mean", "Not a valid choice")
    if spec.crop_size is not None and spec.crop_size < 1:
        raise InvalidField("crop_size", "Number must be at least 1.")
    if spec.select_gpu_count < 1:
        raise InvalidField("select_gpu_count", "Number must be at least 1.")
    if any(i < 0 for i in spec.select_gpus):
        raise InvalidField("select_gpus", "Not a valid choice")


def _check_solver(spec: TrainSpec) -> None:
    if spec.solver_type not in SOLVERS:
        raise InvalidField("solver_type", "Not a valid choice")
    if not spec.learning_rate > 0:
        raise InvalidField("learning_rate", "Number must be greater than 0.")
    if spec.weight_decay is not None and spec.weight_decay < 0:
        raise InvalidField("weight_decay", "Number must be at least 0.")
    if spec.rms_decay < 0:
        raise InvalidField("rms_decay", "Number must be at least 0.")
    if spec.lr_policy not in POLICIES:
        raise InvalidField("lr_policy", "Not a valid choice")
    if spec.lr_policy == "step" and not spec.lr_step_size > 0:
        raise InvalidField("lr_step_size", "Number must be greater than 0.")
    if spec.lr_policy == "multistep":
        try:
            multistep_values(spec.lr_multistep_values)
        except ValueError:
            raise InvalidField(
                "lr_multistep_values", "Must be numbers separated by commas"
            ) from None


def _check_intervals(spec: TrainSpec) -> None:
    if spec.train_epochs < 1:
        raise InvalidField("train_epochs", "Number must be at least 1.")
    if spec.batch_size is not None and spec.batch_size < 1:
        raise InvalidField("batch_size", "Number must be at least 1.")
    if spec.batch_accumulation not in (None, 1):
        raise InvalidField("batch_accumulation", "Batch accumulation is not available yet")
    if spec.snapshot_interval < 0:
        raise InvalidField("snapshot_interval", "Number must be at least 0.")
    if spec.val_interval < 0:
        raise InvalidField("val_interval", "Number must be at least 0.")
    if spec.random_seed is not None and spec.random_seed < 0:
        raise InvalidField("random_seed", "Number must be at least 0.")


def check_crop(spec: TrainSpec, dataset: DatasetBuilt) -> None:
    """A crop must fit the dataset's images (Caffe asserts it; we name the field)."""
    if spec.crop_size is not None and spec.crop_size > min(
        dataset.image_width, dataset.image_height
    ):
        raise InvalidField(
            "crop_size",
            f"Crop size {spec.crop_size} is larger than the images "
            f"({dataset.image_width}x{dataset.image_height})",
        )
