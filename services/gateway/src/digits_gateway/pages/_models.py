"""Model pages: the job page and the new-model form (defaults, labels, usable datasets)."""

from __future__ import annotations

from typing import Any

from litestar.response import Template

from digits_gateway.pages._frame import _form_page, _page
from digits_gateway.pages._view import RUNNING_STATUSES, model_view, status_view
from digits_proto.train_settings import form_defaults

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
# The form's defaults are the training settings' own (digits_proto.train_settings), plus the
# fields that name the job rather than how it trains.
MODEL_DEFAULTS = {
    "dataset": "",
    "model_name": "",
    "group_name": "",
    "previous_networks": "",
    "custom_network": "",
    **form_defaults(),
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
