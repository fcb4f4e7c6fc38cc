"""DIGITS's image-classification dataset form (§1) → CreateDataset."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from digits_gateway.forms._fields import Fields, submitted
from digits_proto.base import BlobRef, Principal
from digits_proto.datasets import CreateDataset, DatasetSpec


def _extra_folders(f: Fields) -> dict[str, Any]:
    """DIGITS's separate validation/test folders (`has_val_folder`, `folder_val`, min/max)."""
    out: dict[str, Any] = {}
    for split in ("val", "test"):
        has = f.boolean(f"has_{split}_folder", False)
        low = f.integer(f"folder_{split}_min_per_class", 2, 1)
        top = f.integer(f"folder_{split}_max_per_class", None, 1)
        if top is not None and low is not None and top < low:
            f.error(
                f"folder_{split}_max_per_class", f"Must be at least folder_{split}_min_per_class."
            )
        out.update(
            {
                f"has_{split}_folder": has,
                f"folder_{split}": f.text(f"folder_{split}", required=has) if has else "",
                f"folder_{split}_min_per_class": low or 2,
                f"folder_{split}_max_per_class": top,
            }
        )
    return out


# Dataset form fields that carry a file; the gateway puts each in the uploads bucket first.
DATASET_FILES = (
    "textfile_train_images",
    "textfile_val_images",
    "textfile_test_images",
    "textfile_labels_file",
    "upload_archive",
)


def _textfile_fields(f: Fields, method: str, blobs: Mapping[str, BlobRef]) -> dict[str, Any]:
    """DIGITS §1.3's textfile fields (lists uploaded as `blobs`, or server paths)."""
    if method != "textfile":
        return {}
    local = f.boolean("textfile_use_local_files", False)
    use = {
        "train": True,
        "val": f.boolean("textfile_use_val", True),
        "test": f.boolean("textfile_use_test", False),
    }
    out: dict[str, Any] = {
        "textfile_use_local_files": local,
        "textfile_use_val": use["val"],
        "textfile_use_test": use["test"],
        "textfile_shuffle": f.choice("textfile_shuffle", ("0", "1"), "1") == "1",
    }
    for split, wanted in use.items():
        out[f"textfile_{split}_folder"] = f.text(f"textfile_{split}_folder")
        if local:
            out[f"textfile_local_{split}_images"] = f.text(
                f"textfile_local_{split}_images", required=wanted
            )
        elif wanted and f"textfile_{split}_images" not in blobs:
            f.error(f"textfile_{split}_images", "This field is required.")
    if local:
        out["textfile_local_labels_file"] = f.text("textfile_local_labels_file", required=True)
    elif "textfile_labels_file" not in blobs:
        f.error("textfile_labels_file", "This field is required.")
    for name in (
        "textfile_train_images",
        "textfile_val_images",
        "textfile_test_images",
        "textfile_labels_file",
    ):
        if not local and name in blobs:
            out[name] = blobs[name]
    return out


def dataset_command(
    values: Mapping[str, Any], principal: Principal, blobs: Mapping[str, BlobRef] | None = None
) -> CreateDataset:
    """CreateDataset from DIGITS's image-classification dataset form (§1), asked by (and to be
    owned by) `principal`."""
    f = Fields(values)
    blobs = blobs or {}
    name = f.text("dataset_name", required=True)
    method = f.choice("method", ("folder", "textfile", "upload"), "folder")
    sources = _textfile_fields(f, method, blobs)
    if method == "upload":
        if "upload_archive" not in blobs:
            f.error("upload_archive", "This field is required.")
        sources["upload_archive"] = blobs.get("upload_archive")
    folder = f.text("folder_train", required=method == "folder")
    pct_val = f.integer("folder_pct_val", 25, 0, 100)
    pct_test = f.integer("folder_pct_test", 0, 0, 100)
    if pct_val is not None and pct_test is not None and pct_val + pct_test > 100:
        f.error("folder_pct_val", "folder_pct_val + folder_pct_test must be at most 100.")
    min_per_class = f.integer("folder_train_min_per_class", 2, 1)
    max_per_class = f.integer("folder_train_max_per_class", None, 1)
    if max_per_class is not None and min_per_class is not None and max_per_class < min_per_class:
        f.error("folder_train_max_per_class", "Must be at least folder_train_min_per_class.")
    extra = _extra_folders(f)
    # DIGITS's LMDB/HDF5 (and TFRecords) all become RecordIO, MXNet's own format.
    f.choice("backend", ("lmdb", "hdf5", "tfrecords", "recordio"), "lmdb")
    channels = f.integer("resize_channels", 3)
    if channels not in (1, 3):
        f.error("resize_channels", "Not a valid choice: 1 (grayscale) or 3 (color).")
    spec = DatasetSpec(
        method=method,
        folder_train=folder,
        folder_pct_val=pct_val if pct_val is not None else 25,
        folder_pct_test=pct_test if pct_test is not None else 0,
        folder_train_min_per_class=min_per_class or 2,
        folder_train_max_per_class=max_per_class,
        **extra,
        **sources,
        resize_width=f.integer("resize_width", 256, 1, 8192) or 256,
        resize_height=f.integer("resize_height", 256, 1, 8192) or 256,
        resize_channels=channels or 3,
        resize_mode=f.choice("resize_mode", ("crop", "squash", "fill", "half_crop"), "squash"),
        encoding=f.choice("encoding", ("none", "png", "jpg"), "png"),
        backend="recordio",
        compression=f.choice("compression", ("none", "gzip"), "none"),
    )
    group = f.text("group_name")
    f.check()
    return CreateDataset(
        name=name,
        username=principal.username,
        group=group,
        spec=spec,
        form=submitted(values),
        principal=principal,
    )
