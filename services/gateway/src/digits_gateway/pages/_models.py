"""Model pages: the job page and the new-model form (defaults, labels, usable datasets)."""

from __future__ import annotations

from typing import Any

from litestar.response import Template

from digits_gateway.pages._frame import _form_page, _page
from digits_gateway.pages._view import RUNNING_STATUSES, model_view, status_view

MODEL_LABELS = {
    "dataset": "Dataset",
    "model_name": "Model name",
    "standard_networks": "Standard networks",
    "framework": "Framework",
    "train_epochs": "Training epochs",
    "snapshot_interval": "Snapshot interval",
    "val_interval": "Validation interval",
    "random_seed": "Random seed",
    "batch_size": "Batch size",
    "solver_type": "Solver type",
    "learning_rate": "Base learning rate",
    "lr_policy": "Learning rate policy",
    "use_mean": "Subtract mean",
    "group_name": "Group name",
    "crop_size": "Crop size",
    "shuffle": "Shuffle",
    "batch_accumulation": "Batch accumulation",
    "rms_decay": "RMS decay",
    "lr_step_size": "Step size",
    "lr_step_gamma": "Gamma",
    "lr_multistep_values": "Step values",
    "lr_multistep_gamma": "Gamma",
    "lr_exp_gamma": "Gamma",
    "lr_inv_gamma": "Gamma",
    "lr_inv_power": "Power",
    "lr_poly_power": "Power",
    "lr_sigmoid_step": "Step",
    "lr_sigmoid_gamma": "Gamma",
    "aug_flip": "Flipping",
    "aug_quad_rot": "Quadrilateral rotation",
    "aug_rot": "Rotation",
    "aug_scale": "Rescale",
    "aug_noise": "Noise",
    "aug_contrast": "Contrast",
    "aug_hsv_h": "Hue",
    "aug_hsv_s": "Saturation",
    "aug_hsv_v": "Value",
    "select_gpu_count": "GPUs",
    "priority": "Priority",
    "early_stopping_patience": "Early stopping",
    "snapshot_keep": "Snapshots kept",
    "previous_networks": "Previous networks",
    "custom_network": "Custom network",
}
MODEL_DEFAULTS = {
    "dataset": "",
    "model_name": "",
    "standard_networks": "lenet",
    "framework": "mxnet",
    "train_epochs": "30",
    "snapshot_interval": "1",
    "val_interval": "1",
    "random_seed": "",
    "batch_size": "",
    "solver_type": "SGD",
    "learning_rate": "0.01",
    "lr_policy": "step",
    "use_mean": "image",
    "group_name": "",
    "method": "standard",
    "crop_size": "",
    "shuffle": "1",
    "batch_accumulation": "",
    "rms_decay": "0.99",
    "lr_step_size": "33",
    "lr_step_gamma": "0.1",
    "lr_multistep_values": "50,85",
    "lr_multistep_gamma": "0.5",
    "lr_exp_gamma": "0.95",
    "lr_inv_gamma": "0.1",
    "lr_inv_power": "0.5",
    "lr_poly_power": "3",
    "lr_sigmoid_step": "50",
    "lr_sigmoid_gamma": "0.1",
    "aug_flip": "none",
    "aug_quad_rot": "none",
    "aug_rot": "0",
    "aug_scale": "0",
    "aug_noise": "0",
    "aug_contrast": "0",
    "aug_whitening": "0",
    "aug_hsv_use": "0",
    "aug_hsv_h": "0.02",
    "aug_hsv_s": "0.04",
    "aug_hsv_v": "0.06",
    "select_gpu_count": "1",
    "priority": "0",
    "early_stopping_patience": "0",
    "snapshot_keep": "0",
    "previous_networks": "",
    "custom_network": "",
}


def model_page(job: dict[str, Any], user: str | None) -> Template:
    """The model job page with live charts and the Test-a-single-image form."""
    view = model_view(job or {})
    return _page("models/show.html", f"{view['name']} · Model", user, job=view)


def model_new_page(
    values: dict[str, Any],
    errors: dict[str, list[str]],
    datasets: list[dict[str, Any]],
    user: str | None,
) -> Template:
    """New image-classification model form; JS refreshes the dataset list from /index.json."""
    usable = [
        {
            "id": str(d.get("id", "")),
            "name": str(d.get("name") or d.get("id")),
            "status": status_view(d.get("status")),
        }
        for d in datasets or []
        if isinstance(d, dict)
        and (d.get("status") == "Done" or d.get("status") in RUNNING_STATUSES)
    ]
    return _form_page(
        "models/new.html",
        "New Image Classification Model",
        user,
        MODEL_DEFAULTS,
        values,
        errors,
        labels=MODEL_LABELS,
        datasets=usable,
    )
