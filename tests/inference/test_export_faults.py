"""Classify many on a full disk (a real size-limited tmpfs): a job's archive that cannot be
extracted, a snapshot that cannot be cached end in a clear error naming the path and the node,
partial files removed, never a 500 or an error id. (The export's own disk faults:
test_export_disk_full.py.)"""

from __future__ import annotations

import io
import uuid
import zipfile
from pathlib import Path

import pytest

from digits_inference import faults
from digits_inference.archive import Limits
from digits_inference.archives import archive_folder, unpack
from digits_inference.handlers import Deps
from digits_inference.settings import Settings, default_node_id
from digits_proto import subjects
from digits_proto.base import BlobRef
from digits_proto.inference import ClassifyMany, ManyStatus
from digits_proto.replies import Rejected
from digits_proto.runtime import Metrics, put_bytes, request
from tests.fakes.principals import ALICE
from tests.inference.inprocess import running_inference
from tests.inference.test_archive import run_archive
from tests.inference.test_service import LABELS, NORMAL, add_dataset, add_model, png
from tests.mounts import fill, tmpfs

pytestmark = pytest.mark.timeout(180)


def tiny_files_zip(count: int) -> bytes:
    """`count` 16-byte ".png" members: the headers declare a few KB, but each file takes a
    whole page of the disk, so the extraction itself runs out of space."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(count):
            zf.writestr(f"{LABELS[i % 3]}/{i}.png", b"\0" * 16)
    return out.getvalue()


async def test_an_archive_that_fills_the_disk_is_refused_naming_the_folder(js, tmp_path) -> None:
    """Extracting a job's archive on a 1 MiB data disk (the free-space floor off, so the
    write itself fails): WriteFailed, 507, "No space left on device writing <the job's
    folder>… on node <node>"; nothing of the archive is left on the disk."""
    data = await put_bytes(
        js, subjects.BUCKET_UPLOADS, f"archives/{uuid.uuid4().hex}.zip", tiny_files_zip(600)
    )
    with tmpfs(tmp_path / "disk", size="1m") as disk:
        deps = Deps(
            js=js,
            registry=None,  # type: ignore[arg-type] - unpack reads neither
            predictor=None,  # type: ignore[arg-type]
            metrics=Metrics("test"),
            cache_dir=disk / "cache",
            max_image_bytes=1 << 20,
            archive_limits=Limits(min_free=0),  # no floor: the disk itself must refuse
        )
        with pytest.raises(faults.WriteFailed) as refused:
            await unpack(deps, data, tuple(LABELS), extract=True, run_id="run1")
        message = str(refused.value)
        assert refused.value.code == 507
        assert message.startswith("No space left on device writing "), message
        assert str(archive_folder(deps, "run1")) in message
        assert message.endswith(f" on node {default_node_id()}")
        assert list((disk / "archives").iterdir()) == []  # no folder, no downloaded archive


async def test_a_snapshot_that_cannot_be_cached_is_a_507_naming_the_cache(
    nats_url, nc, js, tmp_path
) -> None:
    """Classify many (a list, answered at once) with the data disk full before the snapshot
    is fetched: a 507 naming the cache folder and the node, no partial blob left; with space
    back the same request classifies."""
    await add_dataset(js, "d")
    await add_model(js, tmp_path / "nets", "m", "d", {2.0: NORMAL})
    images = tmp_path / "images"
    images.mkdir()
    (images / "a.png").write_bytes(png(200))
    with tmpfs(tmp_path / "disk", size="1m") as disk:
        settings = Settings(
            nats_url=nats_url, data_dir=str(disk / "data"), port=-1, data_roots=[str(images)]
        )
        async with running_inference(settings):
            filler = fill(disk)
            cmd = ClassifyMany(
                job_id="m",
                image_list=BlobRef(bucket="", name=""),
                image_list_text="a.png 2\n",
                image_folder=str(images),
                principal=ALICE,
            )
            _, rejected = await request(nc, subjects.CMD_INFERENCE_CLASSIFY_MANY, cmd, 30)
            assert isinstance(rejected, Rejected) and rejected.code == 507, rejected
            cache = Path(settings.cache_dir)
            assert rejected.message.startswith("No space left on device writing "), rejected
            assert str(cache) in rejected.message
            assert rejected.message.endswith(f" on node {default_node_id()}")
            assert not [p for p in cache.rglob("*") if p.is_file()]  # no partial blob
            filler.unlink()
            _, rejected = await request(nc, subjects.CMD_INFERENCE_CLASSIFY_MANY, cmd, 30)
            assert rejected is None, rejected


async def test_a_job_whose_archive_fills_the_disk_ends_error_naming_it(
    nats_url, nc, js, tmp_path
) -> None:
    """The same archive queued as a job (its declared size fits: it is queued) on a 1 MiB data
    disk: the job ends Error "No space left on device writing <its folder>… on node <node>",
    its folder and download gone; the service then runs the next job."""
    await add_dataset(js, "d")
    await add_model(js, tmp_path / "nets", "m", "d", {2.0: NORMAL})
    with tmpfs(tmp_path / "disk", size="1m") as disk:
        settings = Settings(
            nats_url=nats_url, data_dir=str(disk / "data"), port=-1, min_free_bytes=0
        )
        async with running_inference(settings):
            status = await run_archive(nc, js, tiny_files_zip(600))
            assert isinstance(status, ManyStatus) and status.status == "Error", status
            assert status.error.startswith("No space left on device writing "), status
            assert f"{disk}/data/archives/run-{status.run_id}" in status.error
            assert status.error.endswith(f" on node {default_node_id()}")
            assert list((disk / "data" / "archives").iterdir()) == []
            status = await run_archive(nc, js, tiny_files_zip(30))
            assert isinstance(status, ManyStatus) and status.status == "Done", status
