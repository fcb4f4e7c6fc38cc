"""Where a build's images come from: a folder, "path label" lists, or an uploaded archive."""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec
from nats.js import JetStreamContext

from digits_datasets import archive, textfile
from digits_datasets.errors import BuildError
from digits_datasets.parse import Parsed, parse_folders
from digits_datasets.settings import Settings
from digits_proto import BlobRef
from digits_proto.datasets import DatasetSpec
from digits_proto.runtime import fetch


async def _local(js: JetStreamContext, ref: BlobRef | None, workdir: Path, what: str) -> str:
    if ref is None:
        raise BuildError(f"The {what} was not uploaded")
    try:
        return str(await fetch(js, ref, workdir / "uploads"))
    except Exception as e:
        raise BuildError(f"The uploaded {what} cannot be read: {type(e).__name__}") from e


async def parse_sources(
    spec: DatasetSpec, js: JetStreamContext, settings: Settings, workdir: Path
) -> Parsed:
    """The split plan of any method (blocking work in threads)."""
    roots = settings.roots()
    if spec.method == "textfile":
        return await _textfiles(spec, js, roots, workdir)
    if spec.method == "upload":
        src = await _local(js, spec.upload_archive, workdir, "archive")
        dest = workdir / "upload"
        folder = await asyncio.to_thread(
            archive.extract,
            Path(src),
            dest,
            settings.upload_max_bytes,
            settings.upload_max_members,
            settings.upload_min_free_bytes,
        )
        local = msgspec.structs.replace(
            spec, folder_train=str(folder), has_val_folder=False, has_test_folder=False
        )
        parsed = await asyncio.to_thread(parse_folders, local, [str(dest.resolve())])
        return msgspec.structs.replace(parsed, folders={})
    return await asyncio.to_thread(parse_folders, spec, roots)


async def _textfiles(
    spec: DatasetSpec, js: JetStreamContext, roots: list[str], workdir: Path
) -> Parsed:
    local = spec.textfile_use_local_files
    wanted = {"train": True, "val": spec.textfile_use_val, "test": spec.textfile_use_test}
    lists: dict[str, tuple[str, str]] = {}
    for split, use in wanted.items():
        if not use:
            continue
        if local:
            path = getattr(spec, f"textfile_local_{split}_images")
        else:
            path = await _local(
                js, getattr(spec, f"textfile_{split}_images"), workdir, f"{split} list"
            )
        lists[split] = (path, getattr(spec, f"textfile_{split}_folder"))
    labels_path = (
        spec.textfile_local_labels_file
        if local
        else await _local(js, spec.textfile_labels_file, workdir, "labels file")
    )

    def plan() -> Parsed:
        labels = textfile.read_labels(labels_path)
        split_plan, warnings = textfile.plan_textfiles(labels, lists, roots, spec.textfile_shuffle)
        return Parsed(plan=split_plan, warnings=warnings, folders={})

    return await asyncio.to_thread(plan)
