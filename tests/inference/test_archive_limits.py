"""Classify-many archives: a zip bomb and a disk that would fill are refused, naming the limit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from digits_inference import archive
from digits_inference.archive import ArchiveRefused, Limits
from digits_inference.settings import Settings
from digits_proto import subjects
from digits_proto.base import BlobRef
from digits_proto.inference import ClassifyMany
from digits_proto.runtime import put_bytes, request
from tests.fakes.principals import ALICE
from tests.imaging.bombs import zip_bomb
from tests.inference.inprocess import running_inference
from tests.inference.test_service import NORMAL, REVERSED, add_dataset, add_model

GIB = 1 << 30
HUGE_FLOOR = 1 << 60  # no disk has an exbibyte free


def test_a_2_gib_zip_bomb_is_refused_before_extraction(tmp_path: Path) -> None:
    """Against a 1 GiB bound the bomb is refused from its headers; no folder is made."""
    bomb = zip_bomb(tmp_path / "bomb.zip", mib=2048, declared=None, name="set/a/zeros.png")
    limits = Limits(max_expanded=GIB, max_image=4 * GIB)
    with pytest.raises(ArchiveRefused, match=f"size limit of {GIB} bytes"):
        archive.extract(bomb, tmp_path / "out", limits)
    assert not (tmp_path / "out").exists()


def test_extraction_is_refused_under_the_free_space_floor(tmp_path: Path) -> None:
    """A floor no disk can keep refuses even a tiny archive, naming the floor."""
    small = zip_bomb(tmp_path / "small.zip", mib=1, name="set/a/zeros.png")
    with pytest.raises(ArchiveRefused, match=f"free-space floor of {HUGE_FLOOR} bytes"):
        archive.extract(small, tmp_path / "out", Limits(min_free=HUGE_FLOOR))


@pytest.fixture
async def settings(nats_url: str, js, tmp_path: Path, request) -> AsyncIterator[Settings]:
    """The inference service with the test's archive limits, and model `m`."""
    await add_dataset(js, "d")
    await add_model(js, tmp_path / "nets", "m", "d", {1.0: REVERSED, 2.0: NORMAL})
    settings = Settings(
        nats_url=nats_url, data_dir=str(tmp_path / "data"), port=-1, **request.param
    )
    async with running_inference(settings):
        yield settings


async def classify_archive(nc, js, data: bytes):
    ref = await put_bytes(js, subjects.BUCKET_UPLOADS, "archives/x/images.zip", data)
    command = ClassifyMany(
        job_id="m",
        image_list=BlobRef(bucket="", name=""),
        image_archive=ref,
        background=True,
        principal=ALICE,
    )
    _, rejected = await request(nc, subjects.CMD_INFERENCE_CLASSIFY_MANY, command, 30)
    return rejected


@pytest.mark.parametrize("settings", [{"max_expanded_bytes": GIB}], indirect=True)
async def test_a_zip_bomb_to_classify_many_is_a_400_naming_the_limit(
    settings: Settings, nc, js, tmp_path: Path
) -> None:
    """The 2 MB zip of a 2 GiB image: 400 on image_archive before any job is queued."""
    bomb = zip_bomb(tmp_path / "bomb.zip", mib=2048, name="set/a/zeros.png")
    rejected = await classify_archive(nc, js, bomb.read_bytes())
    assert rejected is not None and (rejected.code, rejected.field) == (400, "image_archive")
    assert f"size limit of {GIB} bytes" in rejected.message


@pytest.mark.parametrize("settings", [{"min_free_bytes": HUGE_FLOOR}], indirect=True)
async def test_an_archive_that_would_fill_the_disk_is_a_400_naming_the_floor(
    settings: Settings, nc, js, tmp_path: Path
) -> None:
    """Refused before queueing, naming the free-space floor."""
    small = zip_bomb(tmp_path / "small.zip", mib=1, name="set/a/zeros.png")
    rejected = await classify_archive(nc, js, small.read_bytes())
    assert rejected is not None and (rejected.code, rejected.field) == (400, "image_archive")
    assert f"free-space floor of {HUGE_FLOOR} bytes" in rejected.message
