"""DIGITS's image-classification model form (§2) → CreateModel(s), one per sweep point."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from typing import Any

from digits_gateway.forms._fields import Fields, submitted
from digits_proto.base import Principal
from digits_proto.models import CreateModel, TrainSpec
from digits_proto.train_settings import (
    DEFAULTS,
    FLIPS,
    FRAMEWORKS,
    LR_POLICIES,
    MEAN_MODES,
    METHODS,
    QUAD_ROTATIONS,
    SOLVERS,
)


def model_commands(
    values: Mapping[str, Any], principal: Principal, dataset_ok: Callable[[str], bool]
) -> list[CreateModel]:
    """CreateModel(s) from DIGITS's model form (§2); a list of learning rates or batch sizes
    is a sweep: one job per combination, named like DIGITS's (` learning_rate:0.01`)."""
    f = Fields(values)
    dataset = f.text("dataset", required=True)
    if dataset and not dataset_ok(dataset):
        f.error("dataset", "Not a valid choice.")
    name = f.text("model_name", required=True)
    method = f.choice("method", METHODS, DEFAULTS.method)
    network = f.text("standard_networks", DEFAULTS.standard_network)
    custom = f.text("custom_network", required=method == "custom")
    previous = f.text("previous_networks", required=method == "previous")
    if method == "pretrained":  # a pretrained model's one snapshot (DIGITS's third tab)
        previous = f.text("pretrained_networks", required=True)
    # DIGITS's `<job_id>-snapshot` field: the epoch to start from (0 = that job's latest,
    # -1 = the weights that job itself started from, its "pretrained model").
    previous_snapshot = f.number(f"{previous}-snapshot", None, -1.0) if previous else None
    f.choice("framework", FRAMEWORKS, DEFAULTS.framework)
    rates = f.numbers("learning_rate", [DEFAULTS.learning_rate], 0.0)
    batch_sizes: list[Any] = f.numbers("batch_size", [DEFAULTS.batch_size], 1, integer=True)
    lr_policy = f.choice("lr_policy", LR_POLICIES, DEFAULTS.lr_policy)
    multistep = f.text("lr_multistep_values", DEFAULTS.lr_multistep_values)
    if lr_policy == "multistep":
        f.numbers("lr_multistep_values", [], 0.0)
    gpus = f.numbers("select_gpus_list", [], 0, integer=True) or f.numbers(
        "select_gpus", [], 0, integer=True
    )
    single = f.text("select_gpu", "next")
    if not gpus and single != "next":
        gpus = f.numbers("select_gpu", [], 0, integer=True)
    base = dict(
        method=method,
        standard_network=network,
        custom_network=custom if method == "custom" else "",
        framework="mxnet",
        train_epochs=f.integer("train_epochs", DEFAULTS.train_epochs, 1),
        snapshot_interval=f.number("snapshot_interval", DEFAULTS.snapshot_interval, 0.0),
        val_interval=f.number("val_interval", DEFAULTS.val_interval, 0.0),
        random_seed=f.integer("random_seed", DEFAULTS.random_seed, 0),
        batch_accumulation=f.integer("batch_accumulation", DEFAULTS.batch_accumulation, 1),
        solver_type=f.choice("solver_type", SOLVERS, DEFAULTS.solver_type),
        momentum=f.number("momentum", DEFAULTS.momentum, 0.0),
        weight_decay=f.number("weight_decay", DEFAULTS.weight_decay, 0.0),
        rms_decay=f.number("rms_decay", DEFAULTS.rms_decay, 0.0),
        lr_policy=lr_policy,
        lr_step_size=f.number("lr_step_size", DEFAULTS.lr_step_size),
        lr_step_gamma=f.number("lr_step_gamma", DEFAULTS.lr_step_gamma),
        lr_multistep_values=multistep,
        lr_multistep_gamma=f.number("lr_multistep_gamma", DEFAULTS.lr_multistep_gamma),
        lr_exp_gamma=f.number("lr_exp_gamma", DEFAULTS.lr_exp_gamma),
        lr_inv_gamma=f.number("lr_inv_gamma", DEFAULTS.lr_inv_gamma),
        lr_inv_power=f.number("lr_inv_power", DEFAULTS.lr_inv_power),
        lr_poly_power=f.number("lr_poly_power", DEFAULTS.lr_poly_power),
        lr_sigmoid_step=f.number("lr_sigmoid_step", DEFAULTS.lr_sigmoid_step),
        lr_sigmoid_gamma=f.number("lr_sigmoid_gamma", DEFAULTS.lr_sigmoid_gamma),
        use_mean=f.choice("use_mean", MEAN_MODES, DEFAULTS.use_mean),
        crop_size=f.integer("crop_size", DEFAULTS.crop_size, 1),
        shuffle=f.boolean("shuffle", DEFAULTS.shuffle),
        previous_network=previous if method in ("previous", "pretrained") else "",
        previous_snapshot=previous_snapshot if method == "previous" else None,
        aug_flip=f.choice("aug_flip", FLIPS, DEFAULTS.aug_flip),
        aug_quad_rot=f.choice("aug_quad_rot", QUAD_ROTATIONS, DEFAULTS.aug_quad_rot),
        aug_rot=f.number("aug_rot", DEFAULTS.aug_rot, 0.0, 180.0),
        aug_scale=f.number("aug_scale", DEFAULTS.aug_scale, 0.0, 1.0),
        aug_noise=f.number("aug_noise", DEFAULTS.aug_noise, 0.0, 1.0),
        aug_contrast=f.number("aug_contrast", DEFAULTS.aug_contrast, 0.0, 5.0),
        aug_whitening=f.boolean("aug_whitening", DEFAULTS.aug_whitening),
        aug_hsv_use=f.boolean("aug_hsv_use", DEFAULTS.aug_hsv_use),
        aug_hsv_h=f.number("aug_hsv_h", DEFAULTS.aug_hsv_h, 0.0, 0.5),
        aug_hsv_s=f.number("aug_hsv_s", DEFAULTS.aug_hsv_s, 0.0, 0.5),
        aug_hsv_v=f.number("aug_hsv_v", DEFAULTS.aug_hsv_v, 0.0, 0.5),
        early_stopping_patience=f.integer(
            "early_stopping_patience", DEFAULTS.early_stopping_patience, 0
        ),
        snapshot_keep=f.integer("snapshot_keep", DEFAULTS.snapshot_keep, 0),
        select_gpu_count=f.integer("select_gpu_count", DEFAULTS.select_gpu_count, 1),
        priority=f.integer("priority", DEFAULTS.priority, -100, 100),
        select_gpus=gpus,
    )
    group = f.text("group_name")
    f.check()
    if not group and len(rates) * len(batch_sizes) > 1:
        group = name  # a sweep's jobs stay together on the home page
    commands = []
    for rate, batch in itertools.product(rates, batch_sizes):
        suffix = f" learning_rate:{rate}" if len(rates) > 1 else ""
        suffix += f" batch_size:{batch}" if len(batch_sizes) > 1 else ""
        spec = TrainSpec(**base, learning_rate=rate, batch_size=batch)  # type: ignore[arg-type]
        commands.append(
            CreateModel(
                name=name + suffix,
                username=principal.username,
                group=group,
                dataset_id=dataset,
                spec=spec,
                form=submitted(values),
                principal=principal,
            )
        )
    return commands
