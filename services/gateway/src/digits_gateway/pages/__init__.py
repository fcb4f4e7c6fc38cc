"""HTML pages of the gateway: the page routes it owns outright and the render functions
its JSON routes call for their HTML variants. Templates live in `web/templates`."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from litestar import Request, get
from litestar.response import Redirect, Template

from digits_gateway.pages._assets import (
    STATIC_DIR,
    STATIC_URL,
    TEMPLATES_DIR,
    WEB_DIR,
    asset_version,
    import_map,
)
from digits_gateway.pages._view import (
    RUNNING_STATUSES,
    dataset_view,
    model_view,
    predictions_view,
    status_view,
)

__all__ = [
    "STATIC_DIR",
    "STATIC_URL",
    "TEMPLATES_DIR",
    "WEB_DIR",
    "classify_many_page",
    "classify_many_progress_page",
    "classify_one_page",
    "current_user",
    "dataset_new_page",
    "dataset_page",
    "login_page",
    "model_new_page",
    "model_page",
    "page_routes",
    "pretrained_new_page",
    "pretrained_page",
    "top_n_page",
]

USERNAME_RE = re.compile(r"^[a-z][a-z0-9._-]*$")  # DIGITS utils/auth.py rule

DATASET_DEFAULTS = {
    "dataset_name": "",
    "folder_train": "",
    "folder_pct_val": "25",
    "folder_pct_test": "0",
    "resize_width": "256",
    "resize_height": "256",
    "resize_channels": "3",
    "resize_mode": "squash",
    "encoding": "png",
    "group_name": "",
    "folder_train_min_per_class": "2",
    "folder_val_min_per_class": "2",
    "folder_test_min_per_class": "2",
    "method": "folder",
    "textfile_shuffle": "1",
}
# Fields inside the dataset form's "more options" box (opened when one has an error).
DATASET_MORE_FIELDS = [
    f"folder_{s}_{k}" for s in ("train", "val", "test") for k in ("min_per_class", "max_per_class")
] + ["folder_val", "folder_test"]
DATASET_LABELS = {
    "dataset_name": "Dataset name",
    "folder_train": "Training images",
    "folder_pct_val": "% for validation",
    "folder_pct_test": "% for testing",
    "resize_width": "Width",
    "resize_height": "Height",
    "resize_channels": "Image type",
    "resize_mode": "Resize transformation",
    "encoding": "Image encoding",
    "group_name": "Group name",
    "folder_train_min_per_class": "Minimum images per class",
    "folder_train_max_per_class": "Maximum images per class",
    "folder_val": "Folder of validation images",
    "folder_test": "Folder of test images",
    "folder_val_min_per_class": "Minimum per class (validation)",
    "folder_val_max_per_class": "Maximum per class (validation)",
    "folder_test_min_per_class": "Minimum per class (test)",
    "folder_test_max_per_class": "Maximum per class (test)",
    "method": "Where the images come from",
    "upload_archive": "Archive of class folders",
    "textfile_train_images": "Training list (upload)",
    "textfile_val_images": "Validation list (upload)",
    "textfile_test_images": "Test list (upload)",
    "textfile_labels_file": "Labels file (upload)",
    "textfile_local_train_images": "Training list (server path)",
    "textfile_local_val_images": "Validation list (server path)",
    "textfile_local_test_images": "Test list (server path)",
    "textfile_local_labels_file": "Labels file (server path)",
    "textfile_train_folder": "Folder for relative paths (training)",
    "textfile_val_folder": "Folder for relative paths (validation)",
    "textfile_test_folder": "Folder for relative paths (test)",
}
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


def current_user(request: Request) -> str | None:
    """The logged-in username from DIGITS's `username` cookie, None when absent or invalid."""
    name = request.cookies.get("username") or ""
    return name if USERNAME_RE.match(name) else None


def safe_next(target: str | None) -> str:
    """A local path to go back to after login (never another site)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def _page(
    template: str, title: str, user: str | None, status_code: int = 200, **context: Any
) -> Template:
    context.update(
        title=title,
        user=user,
        asset_v=asset_version(),
        importmap=import_map(),
        static=STATIC_URL,
    )
    return Template(template_name=template, context=context, status_code=status_code)


def _form(
    defaults: dict[str, str], values: dict[str, Any] | None, errors: dict[str, list[str]] | None
) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Values as strings over the defaults, and errors as lists of strings per field."""
    merged = dict(defaults)
    for key, value in (values or {}).items():
        merged[key] = "" if value is None else str(value)
    errs = {
        k: [str(m) for m in (v if isinstance(v, list) else [v])] for k, v in (errors or {}).items()
    }
    return merged, errs


def dataset_page(job: dict[str, Any], user: str | None) -> Template:
    """The dataset job page (DIGITS datasets/images/classification/show.html)."""
    view = dataset_view(job or {})
    return _page("datasets/show.html", f"{view['name']} · Dataset", user, job=view)


def model_page(job: dict[str, Any], user: str | None) -> Template:
    """The model job page with live charts and the Test-a-single-image form."""
    view = model_view(job or {})
    return _page("models/show.html", f"{view['name']} · Model", user, job=view)


def classify_one_page(
    job: dict[str, Any],
    predictions: list[list[Any]],
    image_data_url: str,
    user: str | None,
    visualizations: dict[str, Any] | None = None,
) -> Template:
    """Classify One result: the input image, the top-5 predictions and, when asked, the layers."""
    view = model_view(job or {})
    image = image_data_url if (image_data_url or "").startswith("data:image/") else ""
    return _page(
        "models/classify_one.html",
        f"Classify One · {view['name']}",
        user,
        job=view,
        predictions=predictions_view(predictions),
        image=image,
        visuals=visualizations,
    )


def classify_many_page(job: dict[str, Any], result: dict[str, Any], user: str | None) -> Template:
    """Classify Many result: accuracy, confusion heat map, per-class accuracy, results table."""
    view = model_view(job or {})
    return _page(
        "models/classify_many.html",
        f"Classify Many · {view['name']}",
        user,
        job=view,
        result=result,
    )


def classify_many_progress_page(
    job: dict[str, Any], status: dict[str, Any], user: str | None
) -> Template:
    """A classify-many job still running: its progress, refreshed by the page's script."""
    view = model_view(job or {})
    return _page(
        "models/classify_many_progress.html",
        f"Classify Many · {view['name']}",
        user,
        job=view,
        status=status,
    )


def top_n_page(job: dict[str, Any], result: dict[str, Any], user: str | None) -> Template:
    """Top-N per category: for each class a mosaic of its best-scoring images."""
    view = model_view(job or {})
    return _page("models/top_n.html", f"Top N · {view['name']}", user, job=view, result=result)


def dataset_new_page(
    values: dict[str, Any], errors: dict[str, list[str]], user: str | None
) -> Template:
    """New image-classification dataset form, re-rendered with values and errors (400)."""
    merged, errs = _form(DATASET_DEFAULTS, values, errors)
    return _page(
        "datasets/new.html",
        "New Image Classification Dataset",
        user,
        status_code=400 if errs else 200,
        values=merged,
        errors=errs,
        labels=DATASET_LABELS,
        more_fields=DATASET_MORE_FIELDS,
    )


def model_new_page(
    values: dict[str, Any],
    errors: dict[str, list[str]],
    datasets: list[dict[str, Any]],
    user: str | None,
) -> Template:
    """New image-classification model form; JS refreshes the dataset list from /index.json."""
    merged, errs = _form(MODEL_DEFAULTS, values, errors)
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
    return _page(
        "models/new.html",
        "New Image Classification Model",
        user,
        status_code=400 if errs else 200,
        values=merged,
        errors=errs,
        labels=MODEL_LABELS,
        datasets=usable,
    )


PRETRAINED_DEFAULTS = {
    "job_name": "",
    "image_type": "3",
    "resize_mode": "squash",
    "width": "224",
    "height": "224",
}


def pretrained_page(job: dict[str, Any], user: str | None) -> Template:
    """A pretrained model: how it preprocesses, its labels, classify/download/fine-tune."""
    view = model_view(job or {})
    view.update(
        labels=[str(label) for label in job.get("labels") or []],
        source=str(job.get("source") or ""),
        source_model_id=str(job.get("source_model_id") or ""),
        fine_tunable=bool(job.get("fine_tunable")),
    )
    return _page("pretrained/show.html", f"{view['name']} · Pretrained model", user, job=view)


def pretrained_new_page(
    values: dict[str, Any], errors: dict[str, list[str]], user: str | None
) -> Template:
    """Upload a pretrained model: an archive, or weights + network (+ labels)."""
    merged, errs = _form(PRETRAINED_DEFAULTS, values, errors)
    return _page(
        "pretrained/new.html",
        "Upload a pretrained model",
        user,
        status_code=400 if errs else 200,
        values=merged,
        errors=errs,
    )


def login_page(next: str, error: str | None) -> Template:
    """Login form (username only, as in DIGITS); `error` re-renders it with a message."""
    return _page(
        "login.html",
        "Log in",
        None,
        status_code=400 if error else 200,
        next=safe_next(next),
        error=error or "",
    )


def _login_redirect(request: Request) -> Redirect:
    return Redirect(path=f"/login?next={quote(request.url.path, safe='/')}")


@get("/", include_in_schema=False, sync_to_thread=False)
def home(request: Request) -> Template:
    """Home: datasets and models tables, filled and kept live by home.js."""
    return _page("home.html", "Home", current_user(request))


@get("/login", include_in_schema=False, sync_to_thread=False)
def login_form(request: Request, next: str = "/") -> Template:
    """GET /login: the form (POST /login belongs to the gateway)."""
    return login_page(next, None)


@get("/datasets/images/classification/new", include_in_schema=False, sync_to_thread=False)
def new_dataset(request: Request) -> Template | Redirect:
    """Empty new-dataset form; DIGITS requires a login first."""
    user = current_user(request)
    return dataset_new_page({}, {}, user) if user else _login_redirect(request)


@get("/models/images/classification/new", include_in_schema=False, sync_to_thread=False)
def new_model(request: Request) -> Template | Redirect:
    """Empty new-model form; the dataset list is fetched client-side from /index.json."""
    user = current_user(request)
    if not user:
        return _login_redirect(request)
    # "Use for a new model" on a pretrained model's page opens its tab with it chosen.
    query = request.query_params
    start = {"method": "pretrained", "pretrained_networks": query.get("pretrained_networks", "")}
    return model_new_page(start if query.get("method") == "pretrained" else {}, {}, [], user)


@get("/pretrained_models/new", include_in_schema=False, sync_to_thread=False)
def new_pretrained(request: Request) -> Template | Redirect:
    """The upload form (DIGITS had it in a dialog on the home page's third tab)."""
    user = current_user(request)
    return pretrained_new_page({}, {}, user) if user else _login_redirect(request)


page_routes: list[Any] = [home, login_form, new_dataset, new_model, new_pretrained]
