"""Which training specs this trainer accepts, and the defaults DIGITS applies to them."""

from __future__ import annotations

from digits_proto.datasets import DatasetBuilt
from digits_proto.models import TrainSpec
from digits_proto.train_settings import (
    FLIPS,
    LR_POLICIES,
    MEAN_MODES,
    METHODS,
    QUAD_ROTATIONS,
    SOLVERS,
)
from digits_trainer.errors import InvalidField
from digits_trainer.lr import multistep_values

FRAMEWORKS = ("mxnet",)  # the gateway records every form's framework as mxnet
# Standard networks with the batch size their DIGITS prototxt sets (ResNet-18: ours).
NETWORK_BATCH_SIZE = {"lenet": 64, "alexnet": 100, "googlenet": 32, "resnet18": 64}
# The smallest square input each network's pooling stack accepts (measured; see tests).
MIN_INPUT = {"alexnet": 55, "googlenet": 47}


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
    if spec.method not in METHODS:
        raise InvalidField("method", "Not a valid choice")
    if spec.method == "standard" and spec.standard_network not in NETWORK_BATCH_SIZE:
        raise InvalidField("standard_networks", "Not a valid choice")
    if spec.method == "custom" and not spec.custom_network.strip():
        raise InvalidField("custom_network", "This field is required.")
    if spec.method == "previous" and not spec.previous_network:
        raise InvalidField("previous_networks", "This field is required.")
    if spec.method == "pretrained" and not spec.previous_network:
        raise InvalidField("pretrained_networks", "This field is required.")
    _check_augmentation(spec)
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
    if spec.lr_policy not in LR_POLICIES:
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
    if spec.batch_accumulation is not None and spec.batch_accumulation < 1:
        raise InvalidField("batch_accumulation", "Number must be at least 1.")
    if spec.early_stopping_patience < 0:
        raise InvalidField("early_stopping_patience", "Number must be at least 0.")
    if spec.snapshot_keep < 0:
        raise InvalidField("snapshot_keep", "Number must be at least 0.")
    if spec.snapshot_interval < 0:
        raise InvalidField("snapshot_interval", "Number must be at least 0.")
    if spec.val_interval < 0:
        raise InvalidField("val_interval", "Number must be at least 0.")
    if spec.random_seed is not None and spec.random_seed < 0:
        raise InvalidField("random_seed", "Number must be at least 0.")


def _check_augmentation(spec: TrainSpec) -> None:
    if spec.aug_flip not in FLIPS:
        raise InvalidField("aug_flip", "Not a valid choice")
    if spec.aug_quad_rot not in QUAD_ROTATIONS:
        raise InvalidField("aug_quad_rot", "Not a valid choice")
    for field, value, top in (
        ("aug_rot", spec.aug_rot, 180),
        ("aug_scale", spec.aug_scale, 1),
        ("aug_noise", spec.aug_noise, 1),
        ("aug_contrast", spec.aug_contrast, 5),
        ("aug_hsv_h", spec.aug_hsv_h, 0.5),
        ("aug_hsv_s", spec.aug_hsv_s, 0.5),
        ("aug_hsv_v", spec.aug_hsv_v, 0.5),
    ):
        if not 0 <= value <= top:
            raise InvalidField(field, f"Number must be between 0 and {top}.")


def input_shape(spec: TrainSpec, dataset: DatasetBuilt) -> tuple[int, int, int]:
    """[C, H, W] the network receives: the dataset's images after the crop."""
    crop = spec.crop_size
    return (
        dataset.image_channels,
        crop or dataset.image_height,
        crop or dataset.image_width,
    )


def check_crop(spec: TrainSpec, dataset: DatasetBuilt) -> None:
    """A crop must fit the dataset's images (Caffe asserts it; we name the field); a standard
    network must accept the resulting input size."""
    smallest = MIN_INPUT.get(spec.standard_network, 1) if spec.method == "standard" else 1
    _, height, width = input_shape(spec, dataset)
    if min(height, width) < smallest:
        raise InvalidField(
            "standard_networks",
            f"{spec.standard_network} needs inputs of at least {smallest}x{smallest}; "
            f"this job's are {width}x{height} (resize the dataset or pick another network)",
        )
    if spec.crop_size is not None and spec.crop_size > min(
        dataset.image_width, dataset.image_height
    ):
        raise InvalidField(
            "crop_size",
            f"Crop size {spec.crop_size} is larger than the images "
            f"({dataset.image_width}x{dataset.image_height})",
        )
