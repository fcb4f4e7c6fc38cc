"""Fetch an uploaded image archive to disk, check it, and extract it for a classify-many job."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from nats.js.errors import ObjectDeletedError, ObjectNotFoundError

from digits_inference import archive, errors, faults
from digits_inference.many import Entry
from digits_proto import subjects
from digits_proto.base import BlobRef
from digits_proto.runtime import read_blob

if TYPE_CHECKING:
    from digits_inference.handlers import Deps


def archive_folder(deps: Deps, run_id: str) -> Path:
    """Where a queued job's archive is extracted: named after the job, so the process taking
    over a job whose worker died removes the half-extracted folder it left."""
    return Path(deps.cache_dir).parent / "archives" / f"run-{run_id}"


async def unpack(
    deps: Deps, ref: BlobRef, labels: tuple[str, ...], extract: bool, run_id: str = ""
) -> tuple[list[Entry], Path | None]:
    """The archive's images as entries; extracted under the data dir when `extract` (the
    folder is returned for removal), else only listed (validation before queueing a job)."""
    if ref.bucket != subjects.BUCKET_UPLOADS:
        raise errors.BadArchive(f"Archives are read from the uploads bucket only, not {ref.bucket}")
    limits = deps.archive_limits
    work = Path(deps.cache_dir).parent / "archives"
    folder = None
    if extract:
        folder = archive_folder(deps, run_id) if run_id else work / uuid.uuid4().hex
        await asyncio.to_thread(archive.remove, folder)  # a dead worker's, half extracted
    with faults.writing(work):  # a full or read-only disk: a refusal naming it, not a 500
        work.mkdir(parents=True, exist_ok=True)
        local = await _download(deps, ref, work, run_id)
    try:
        if folder is None:
            members = await asyncio.to_thread(archive.list_images, local, limits)
            needed = sum(min(m.size, limits.max_image) for m in members)
            archive.check_free_space(work, needed, limits.min_free)  # refused now, not queued
        else:
            members = await asyncio.to_thread(archive.extract, local, folder, limits)
    except BaseException as e:  # refused, or disk full: leave nothing extracted behind
        if folder is not None:
            await asyncio.to_thread(archive.remove, folder)
        # The extractor refuses an archive it cannot read, and says so even when the failed
        # write was ours (the disk full): that one is this node's fault, named as such.
        cause = e.__cause__ if isinstance(e, archive.ArchiveRefused) else e
        if faults.on_disk(cause) and (cause is e or cause.errno in faults.WRITE_ERRNOS):
            raise faults.WriteFailed(cause, folder or work) from e
        if isinstance(e, archive.ArchiveRefused):
            raise errors.BadArchive(str(e)) from e
        raise
    finally:
        with contextlib.suppress(OSError):
            local.unlink()
    return archive.entries(members, folder or work, labels, limits), folder


async def _download(deps: Deps, ref: BlobRef, work: Path, run_id: str = "") -> Path:
    """The blob streamed into a temporary file (never whole in memory), size-checked first;
    a job's is named after it (a dead worker's leftover is overwritten, not left behind)."""
    store = await deps.js.object_store(ref.bucket)
    try:
        info = await store.get_info(ref.name)
    except (ObjectNotFoundError, ObjectDeletedError) as e:
        raise errors.BadArchive(f"Uploaded archive {ref.name} not found") from e
    if (info.size or 0) > deps.max_archive_bytes:
        raise errors.BadArchive(
            f"Archive too large: {info.size} bytes (the limit is {deps.max_archive_bytes})"
        )
    if run_id:
        name = str(work / f"run-{run_id}.upload")
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    else:
        fd, name = tempfile.mkstemp(dir=work, suffix=".upload")
    try:
        with os.fdopen(fd, "wb") as out:
            await read_blob(deps.js, ref.bucket, ref.name, out)
    except BaseException as e:  # not found, or the disk full: no partial file left behind
        with contextlib.suppress(OSError):
            os.unlink(name)
        if isinstance(e, (ObjectNotFoundError, ObjectDeletedError)):
            raise errors.BadArchive(f"Uploaded archive {ref.name} not found") from e
        raise
    return Path(name)
