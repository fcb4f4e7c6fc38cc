"""Method `textfile` (DIGITS §1.3): "path label" lists, folder prefixes, labels file, shuffle."""

from __future__ import annotations

from pathlib import Path

import pytest

from digits_datasets.errors import BuildError
from digits_datasets.settings import Settings
from digits_datasets.textfile import parse_list, read_labels
from digits_proto import subjects
from digits_proto.datasets import CreateDataset, DatasetBuilt, DatasetFailed, DatasetSpec
from digits_proto.runtime import put_bytes, request
from tests.fakes.principals import ALICE

from .conftest import make_folder
from .test_service import fetch, read_records, wait_terminal


def test_line_rules_follow_digits_and_refuse_what_leaves_the_roots(tmp_path: Path) -> None:
    """Spaces in paths pass; no label, bad label, URL, relative without folder, outside: skipped."""
    root = tmp_path / "root"
    lst = tmp_path / "train.txt"
    lst.write_text(
        f"{root}/a dir/cat 1.png 0\n"
        "rel/dog.png   1  \n"
        "\n"
        "no-label.png\n"
        f"{root}/x.png -1\n"
        f"{root}/y.png 7\n"
        "http://example.com/z.png 0\n"
        "/etc/passwd 0\n"
    )
    items, warnings = parse_list(str(lst), "train", ["a", "b"], str(root), [str(root)])
    assert items == [(f"{root}/a dir/cat 1.png", 0), (f"{root}/rel/dog.png", 1)]
    text = "\n".join(warnings)
    for reason in (
        "no numeric label",
        "label outside",
        "URLs are not fetched",
        "outside the allowed",
    ):
        assert reason in text
    assert "2 line(s) skipped: no numeric label" in text  # "no-label.png" and "x.png -1"
    no_folder, warnings = parse_list(str(lst), "train", ["a", "b"], "", [str(root)])
    assert len(no_folder) == 1 and any("relative path and no folder" in w for w in warnings)


def test_list_without_valid_lines_and_empty_labels_fail(tmp_path: Path) -> None:
    """No valid line, or an empty labels file, stops the build with a message."""
    (tmp_path / "bad.txt").write_text("nothing here\n")
    with pytest.raises(BuildError, match="no valid line"):
        parse_list(str(tmp_path / "bad.txt"), "val", ["a"], "", [str(tmp_path)])
    (tmp_path / "labels.txt").write_text("\n\n")
    with pytest.raises(BuildError, match="empty"):
        read_labels(str(tmp_path / "labels.txt"))
    with pytest.raises(BuildError, match="Cannot read the labels file"):
        read_labels(str(tmp_path / "missing.txt"))


def write_lists(images: Path) -> tuple[Path, dict[str, Path]]:
    """A folder of images plus train/val lists (relative paths) and a labels file."""
    folder = make_folder(images / "pics", {"a_cat": 6, "b": 6})
    files = {
        c: sorted(p.relative_to(folder) for p in (folder / c).rglob("*.*")) for c in ("a_cat", "b")
    }
    train = [f"{p} {i}" for i, c in enumerate(("a_cat", "b")) for p in files[c][:4]]
    val = [f"{p} {i}" for i, c in enumerate(("a_cat", "b")) for p in files[c][4:]]
    lists = {
        "train": images / "train.txt",
        "val": images / "val.txt",
        "labels": images / "labels.txt",
    }
    lists["train"].write_text("\n".join(train) + "\n")
    lists["val"].write_text("\n".join(val) + "\n")
    lists["labels"].write_text("cat\ndog\n")
    return folder, lists


async def create(nc, spec: DatasetSpec):
    body, rejected = await request(
        nc, subjects.CMD_DATASETS_CREATE, CreateDataset(name="t", spec=spec, principal=ALICE)
    )
    return body, rejected


async def test_local_lists_build_in_list_order_without_shuffle(
    service: Settings, nc, js, images: Path, tmp_path: Path
) -> None:
    """Server-side lists with a folder prefix: labels from the labels file, order kept."""
    from digits_proto import codec

    folder, lists = write_lists(images)
    spec = DatasetSpec(
        method="textfile",
        textfile_use_local_files=True,
        textfile_local_train_images=str(lists["train"]),
        textfile_train_folder=str(folder),
        textfile_local_val_images=str(lists["val"]),
        textfile_val_folder=str(folder),
        textfile_local_labels_file=str(lists["labels"]),
        textfile_shuffle=False,
        resize_width=8,
        resize_height=8,
    )
    body, rejected = await create(nc, spec)
    assert rejected is None, rejected
    accepted = codec.command_reply.decode(body)
    built = (await wait_terminal(js, accepted.id))[-1]
    assert isinstance(built, DatasetBuilt), built
    assert built.labels == ["cat", "dog"]
    splits = {s.split: s for s in built.splits}
    assert (splits["train"].class_counts, splits["val"].class_counts) == ([4, 4], [2, 2])
    cache = tmp_path / "c"
    records = read_records(
        await fetch(js, splits["train"].rec, cache), await fetch(js, splits["train"].idx, cache)
    )
    assert [label for label, _ in records] == [0, 0, 0, 0, 1, 1, 1, 1]  # not shuffled


async def test_uploaded_lists_come_through_the_uploads_bucket(
    service: Settings, nc, js, images: Path
) -> None:
    """Lists uploaded to the Object Store (as the gateway does) build like local ones."""
    from digits_proto import codec

    folder, lists = write_lists(images)
    refs = {
        k: await put_bytes(js, subjects.BUCKET_UPLOADS, f"t/{k}.txt", p.read_bytes())
        for k, p in lists.items()
    }
    spec = DatasetSpec(
        method="textfile",
        textfile_train_images=refs["train"],
        textfile_train_folder=str(folder),
        textfile_use_val=False,
        textfile_labels_file=refs["labels"],
        resize_width=8,
        resize_height=8,
    )
    body, rejected = await create(nc, spec)
    assert rejected is None, rejected
    built = (await wait_terminal(js, codec.command_reply.decode(body).id))[-1]
    assert isinstance(built, DatasetBuilt), built
    assert [s.split for s in built.splits] == ["train"] and built.splits[0].entries == 8


async def test_textfile_refusals_name_the_field(
    service: Settings, nc, js, images: Path, tmp_path: Path
) -> None:
    """Local lists outside the roots or missing, and a missing labels upload, are 400s."""
    outside = tmp_path / "outside.txt"
    outside.write_text("/x 0\n")
    cases = [
        (
            dict(
                textfile_use_local_files=True,
                textfile_local_train_images=str(outside),
                textfile_use_val=False,
                textfile_local_labels_file=str(outside),
            ),
            "textfile_local_train_images",
        ),
        (
            dict(
                textfile_use_local_files=True,
                textfile_local_train_images=str(images / "no.txt"),
                textfile_use_val=False,
                textfile_local_labels_file=str(images / "no.txt"),
            ),
            "textfile_local_train_images",
        ),
        (
            dict(
                textfile_use_local_files=True,
                textfile_local_train_images=str(outside),
                textfile_use_val=False,
            ),
            "textfile_local_labels_file",
        ),
        (
            dict(
                textfile_use_local_files=True,
                textfile_local_train_images=str(outside),
                textfile_local_labels_file=str(outside),
                textfile_train_folder=str(tmp_path),
                textfile_use_val=False,
            ),
            "textfile_train_folder",
        ),
    ]
    for changes, field in cases:
        _, rejected = await create(nc, DatasetSpec(method="textfile", **changes))
        assert rejected is not None and (rejected.code, rejected.field) == (400, field), rejected


async def test_list_of_only_bad_lines_fails_the_build_naming_it(
    service: Settings, nc, js, images: Path
) -> None:
    """A list where no line is valid ends in DatasetFailed saying which list."""
    from digits_proto import codec

    (images / "l.txt").write_text("a b c\n")
    (images / "labels.txt").write_text("x\ny\n")
    spec = DatasetSpec(
        method="textfile",
        textfile_use_local_files=True,
        textfile_use_val=False,
        textfile_local_train_images=str(images / "l.txt"),
        textfile_local_labels_file=str(images / "labels.txt"),
    )
    body, rejected = await create(nc, spec)
    assert rejected is None
    failed = (await wait_terminal(js, codec.command_reply.decode(body).id))[-1]
    assert isinstance(failed, DatasetFailed) and "train list has no valid line" in failed.error
