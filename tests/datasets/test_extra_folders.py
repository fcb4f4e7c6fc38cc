"""Separate validation/test folders (DIGITS §1.2): parsed against the train labels."""

from __future__ import annotations

from pathlib import Path

from digits_datasets.settings import Settings
from digits_datasets.splits import add_folder_split, plan_splits
from digits_proto.datasets import DatasetBuilt, DatasetFolderParsed

from .conftest import make_folder
from .test_service import create, wait_terminal


def test_extra_folder_uses_train_labels_and_its_own_min_max() -> None:
    """Unknown classes are skipped, max truncates, min drops; labels keep the train indices."""
    plan = plan_splits([("a", ["a1", "a2"]), ("b", ["b1", "b2"]), ("c", ["c1", "c2"])], 0, 0)
    val = [("b", ["vb1", "vb2", "vb3"]), ("c", ["vc1"]), ("zebra", ["vz1", "vz2"])]
    out = add_folder_split(plan, "val", val, min_per_class=2, max_per_class=2)
    assert sorted(out.splits["val"]) == [("vb1", 1), ("vb2", 1)]
    assert out.splits["train"] == plan.splits["train"]
    text = " ".join(out.warnings)
    assert "'zebra' is not a train label" in text and "'c'" in text and "kept the first 2" in text


async def test_build_with_separate_val_and_test_folders(
    service: Settings, nc, js, images: Path
) -> None:
    """The train folder gives all its images to train; val/test come whole from their folders."""
    train = make_folder(images / "train", {"a_cat": 5, "b": 5})
    val = make_folder(images / "val", {"a_cat": 3, "b": 2})
    test = make_folder(images / "test", {"b": 4, "c": 2})
    accepted, rejected = await create(
        nc,
        train,
        folder_pct_val=25,
        folder_pct_test=10,
        has_val_folder=True,
        folder_val=str(val),
        folder_val_max_per_class=2,
        has_test_folder=True,
        folder_test=str(test),
        folder_test_min_per_class=1,
    )
    assert rejected is None and accepted is not None
    events = await wait_terminal(js, accepted.id)
    built = events[-1]
    assert isinstance(built, DatasetBuilt), built
    parsed = next(e for e in events if isinstance(e, DatasetFolderParsed))
    assert parsed.split_counts == {"train": 10, "val": 4, "test": 4}
    assert parsed.folders == {"train": str(train), "val": str(val), "test": str(test)}
    counts = {s.split: s.class_counts for s in built.splits}
    assert counts == {"train": [5, 5], "val": [2, 2], "test": [0, 4]}


async def test_separate_folder_outside_the_roots_is_a_400_naming_it(
    service: Settings, nc, images: Path, tmp_path: Path
) -> None:
    """folder_val must lie inside the data roots like folder_train."""
    train = make_folder(images / "train", {"a_cat": 2, "b": 2})
    outside = make_folder(tmp_path / "outside", {"a_cat": 2})
    _, rejected = await create(nc, train, has_val_folder=True, folder_val=str(outside))
    assert rejected is not None and (rejected.code, rejected.field) == (400, "folder_val")
    _, rejected = await create(nc, train, has_test_folder=True, folder_test=str(images / "no"))
    assert rejected is not None and (rejected.code, rejected.field) == (400, "folder_test")
