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
    "classify_one_page",
    "current_user",
    "dataset_new_page",
    "dataset_page",
    "login_page",
    "model_new_page",
    "model_page",
    "page_routes",
]

USERNAME_RE = re.compile(r"^[a-z][a-z0-9._-]*$")  # DIGITS utils/auth.py rule

DATASET_DEFAULTS = {
    "dataset_name": "", "folder_train": "", "folder_pct_val": "25", "folder_pct_test": "0",
    "resize_width": "256", "resize_height": "256", "resize_channels": "3",
    "resize_mode": "squash", "encoding": "png", "group_name": "",
}
DATASET_LABELS = {
    "dataset_name": "Dataset name", "folder_train": "Training images",
    "folder_pct_val": "% for validation", "folder_pct_test": "% for testing",
    "resize_width": "Width", "resize_height": "Height", "resize_channels": "Image type",
    "resize_mode": "Resize transformation", "encoding": "Image encoding",
    "group_name": "Group name",
}
MODEL_LABELS = {
    "dataset": "Dataset", "model_name": "Model name", "standard_networks": "Standard networks",
    "framework": "Framework", "train_epochs": "Training epochs",
    "snapshot_interval": "Snapshot interval", "val_interval": "Validation interval",
    "random_seed": "Random seed", "batch_size": "Batch size", "solver_type": "Solver type",
    "learning_rate": "Base learning rate", "lr_policy": "Learning rate policy",
    "use_mean": "Subtract mean", "group_name": "Group name",
}
MODEL_DEFAULTS = {
    "dataset": "", "model_name": "", "standard_networks": "lenet", "framework": "mxnet",
    "train_epochs": "30", "snapshot_interval": "1", "val_interval": "1", "random_seed": "",
    "batch_size": "", "solver_type": "SGD", "learning_rate": "0.01", "lr_policy": "step",
    "use_mean": "image", "group_name": "",
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


def _page(template: str, title: str, user: str | None, status_code: int = 200,
          **context: Any) -> Template:
    context.update(
        title=title, user=user, asset_v=asset_version(), importmap=import_map(),
        static=STATIC_URL,
    )
    return Template(template_name=template, context=context, status_code=status_code)


def _form(defaults: dict[str, str], values: dict[str, Any] | None,
          errors: dict[str, list[str]] | None) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Values as strings over the defaults, and errors as lists of strings per field."""
    merged = dict(defaults)
    for key, value in (values or {}).items():
        merged[key] = "" if value is None else str(value)
    errs = {k: [str(m) for m in (v if isinstance(v, list) else [v])]
            for k, v in (errors or {}).items()}
    return merged, errs


def dataset_page(job: dict[str, Any], user: str | None) -> Template:
    """The dataset job page (DIGITS datasets/images/classification/show.html)."""
    view = dataset_view(job or {})
    return _page("datasets/show.html", f"{view['name']} · Dataset", user, job=view)


def model_page(job: dict[str, Any], user: str | None) -> Template:
    """The model job page with live charts and the Test-a-single-image form."""
    view = model_view(job or {})
    return _page("models/show.html", f"{view['name']} · Model", user, job=view)


def classify_one_page(job: dict[str, Any], predictions: list[list[Any]],
                      image_data_url: str, user: str | None) -> Template:
    """Classify One result: the input image and the top-5 predictions."""
    view = model_view(job or {})
    image = image_data_url if (image_data_url or "").startswith("data:image/") else ""
    return _page("models/classify_one.html", f"Classify One · {view['name']}", user,
                 job=view, predictions=predictions_view(predictions), image=image)


def dataset_new_page(values: dict[str, Any], errors: dict[str, list[str]],
                     user: str | None) -> Template:
    """New image-classification dataset form, re-rendered with values and errors (400)."""
    merged, errs = _form(DATASET_DEFAULTS, values, errors)
    return _page("datasets/new.html", "New image classification dataset", user,
                 status_code=400 if errs else 200, values=merged, errors=errs,
                 labels=DATASET_LABELS)


def model_new_page(values: dict[str, Any], errors: dict[str, list[str]],
                   datasets: list[dict[str, Any]], user: str | None) -> Template:
    """New image-classification model form; JS refreshes the dataset list from /index.json."""
    merged, errs = _form(MODEL_DEFAULTS, values, errors)
    usable = [
        {"id": str(d.get("id", "")), "name": str(d.get("name") or d.get("id")),
         "status": status_view(d.get("status"))}
        for d in datasets or [] if isinstance(d, dict)
        and (d.get("status") == "Done" or d.get("status") in RUNNING_STATUSES)
    ]
    return _page("models/new.html", "New image classification model", user,
                 status_code=400 if errs else 200, values=merged, errors=errs,
                 labels=MODEL_LABELS, datasets=usable)


def login_page(next: str, error: str | None) -> Template:
    """Login form (username only, as in DIGITS); `error` re-renders it with a message."""
    return _page("login.html", "Log in", None, status_code=400 if error else 200,
                 next=safe_next(next), error=error or "")


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
    return model_new_page({}, {}, [], user) if user else _login_redirect(request)


page_routes: list[Any] = [home, login_form, new_dataset, new_model]
