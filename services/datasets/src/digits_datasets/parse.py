"""Turn a spec's source folders into a split plan (DIGITS's ParseFolder tasks), blocking I/O."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from digits_datasets.errors import BuildError
from digits_datasets.folders import scan_folder
from digits_datasets.splits import SplitPlan, add_folder_split, plan_splits
from digits_proto.datasets import DatasetSpec


class Parsed(msgspec.Struct, frozen=True, kw_only=True):
    """The plan, every warning, and which folder each split came from."""

    plan: SplitPlan
    warnings: list[str]
    folders: dict[str, str]


def _scan(folder: str, roots: Sequence[str]) -> tuple[list[tuple[str, list[str]]], list[str]]:
    try:
        return scan_folder(folder, roots)
    except OSError as e:
        raise BuildError(f"Cannot read folder {folder}: {e.strerror or e}") from e


def parse_folders(spec: DatasetSpec, roots: Sequence[str]) -> Parsed:
    """Scan the train folder (and the separate val/test folders), split, check what is left."""
    classes, warnings = _scan(spec.folder_train, roots)
    if len(classes) < 2:
        raise BuildError("folder must contain at least two subdirectories")
    empty = [name for name, files in classes if not files]
    warnings += [f"Category {name!r} has no images, dropped" for name in empty]
    classes = [(name, files) for name, files in classes if files]
    plan = plan_splits(
        classes,
        0 if spec.has_val_folder else spec.folder_pct_val,
        0 if spec.has_test_folder else spec.folder_pct_test,
        spec.folder_train_min_per_class,
        spec.folder_train_max_per_class,
    )
    if len(plan.labels) < 2:
        raise BuildError("Did not find two valid categories")
    folders = {"train": spec.folder_train}
    for split in ("val", "test"):
        folder = getattr(spec, f"folder_{split}")
        if not (getattr(spec, f"has_{split}_folder") and folder):
            continue
        extra, more = _scan(folder, roots)
        warnings += more
        plan = add_folder_split(
            plan,
            split,
            extra,
            getattr(spec, f"folder_{split}_min_per_class"),
            getattr(spec, f"folder_{split}_max_per_class"),
        )
        folders[split] = folder
    if not plan.splits["train"]:
        raise BuildError(
            "No images were selected for training (folder_pct_val + folder_pct_test leave nothing)"
        )
    return Parsed(plan=plan, warnings=[*warnings, *plan.warnings], folders=folders)
