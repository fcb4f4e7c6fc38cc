"""Dataset pages: the job page and the new-dataset form (defaults, labels, errors)."""

from __future__ import annotations

from typing import Any

from litestar.response import Template

from digits_gateway.pages._frame import _form_page, _page
from digits_gateway.pages._view import dataset_view

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


def dataset_page(job: dict[str, Any], user: str | None) -> Template:
    """The dataset job page (DIGITS datasets/images/classification/show.html)."""
    view = dataset_view(job or {})
    return _page("datasets/show.html", f"{view['name']} · Dataset", user, job=view)


def dataset_new_page(
    values: dict[str, Any], errors: dict[str, list[str]], user: str | None
) -> Template:
    """New image-classification dataset form, re-rendered with values and errors (400)."""
    return _form_page(
        "datasets/new.html",
        "New Image Classification Dataset",
        user,
        DATASET_DEFAULTS,
        values,
        errors,
        labels=DATASET_LABELS,
        more_fields=DATASET_MORE_FIELDS,
    )
