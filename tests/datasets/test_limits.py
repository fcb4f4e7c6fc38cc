"""Limits at the datasets service: a decompression bomb is a skipped file, a zip bomb fails the
build naming the limit and leaves no work files, the resize example refuses a bomb."""

from __future__ import annotations

from pathlib import Path

import pytest

from digits_datasets.errors import InvalidField
from digits_datasets.example import resize_example
from digits_datasets.settings import Settings
from digits_proto import subjects
from digits_proto.datasets import DatasetBuilt, DatasetFailed, ResizeExample
from digits_proto.runtime import request
from tests.fakes.principals import ALICE
from tests.imaging.bombs import png_bomb, zip_bomb

from .conftest import make_folder
from .test_archive import create_upload
from .test_service import create, wait_terminal

LIMIT = "100000000 pixels, the limit is 25000000"


def test_settings_default_to_25_megapixels_and_a_4_gib_archive_cap() -> None:
    """The defaults that bound one image and one upload."""
    settings = Settings()
    assert settings.max_pixels == 25_000_000
    assert settings.upload_max_bytes == 4 << 30
    assert settings.upload_min_free_bytes == 1 << 30


async def test_a_bomb_png_in_a_build_is_a_skipped_file_naming_the_limit(
    service: Settings, nc, js, images: Path
) -> None:
    """The 10000×10000 16-bit PNG is listed among the errors with the reason; the rest builds."""
    folder = make_folder(images / "bombed", {"a": 3, "b": 3})
    (folder / "a" / "bomb.png").write_bytes(png_bomb())
    accepted, rejected = await create(nc, folder, folder_pct_val=0)
    assert rejected is None and accepted is not None
    built = (await wait_terminal(js, accepted.id))[-1]
    assert isinstance(built, DatasetBuilt), built
    reasons = {Path(e.path).name: e.reason for e in built.errors}
    assert list(reasons) == ["bomb.png"] and LIMIT in reasons["bomb.png"]
    assert built.splits[0].class_counts == [3, 3]
    assert built.splits[0].error_count == 1


@pytest.mark.parametrize("overrides", [{"upload_max_bytes": 1 << 30}])
async def test_a_zip_bomb_upload_fails_the_build_naming_the_limit(
    service: Settings, nc, js, tmp_path: Path
) -> None:
    """A 2 MB zip expanding to 2 GiB, against a 1 GiB cap: the build fails naming the limit,
    and nothing is left in the jobs folder."""
    bomb = zip_bomb(tmp_path / "bomb.zip", mib=2048, name="cats/zeros.png")
    failed = (await wait_terminal(js, await create_upload(nc, js, bomb.read_bytes())))[-1]
    assert isinstance(failed, DatasetFailed), failed
    assert f"size limit of {1 << 30} bytes" in failed.error
    assert not list(Path(service.jobs_dir()).glob("*"))


@pytest.mark.parametrize("overrides", [{"upload_min_free_bytes": 1 << 60}])
async def test_an_upload_that_would_fill_the_disk_fails_naming_the_floor(
    service: Settings, nc, js, tmp_path: Path
) -> None:
    """No disk has an exbibyte free: the build fails naming the free-space floor."""
    small = zip_bomb(tmp_path / "small.zip", mib=1, name="cats/zeros.png")
    failed = (await wait_terminal(js, await create_upload(nc, js, small.read_bytes())))[-1]
    assert isinstance(failed, DatasetFailed), failed
    assert f"free-space floor of {1 << 60} bytes" in failed.error


def test_resize_example_refuses_a_bomb_on_image_naming_the_limit() -> None:
    """The form's sample image: a 400 on `image`, decided from the header."""
    with pytest.raises(InvalidField, match=LIMIT) as e:
        resize_example(ResizeExample(image=png_bomb(), width=32, height=32), 25_000_000)
    assert e.value.field == "image"


async def test_resize_example_over_the_bus_is_a_400_on_image(service: Settings, nc) -> None:
    """Sent to the service, the bomb is a Rejected 400 naming the field and the limit."""
    command = ResizeExample(image=png_bomb(), width=32, height=32, principal=ALICE)
    _, rejected = await request(nc, subjects.CMD_DATASETS_RESIZE_EXAMPLE, command)
    assert rejected is not None and (rejected.code, rejected.field) == (400, "image")
    assert LIMIT in rejected.message
