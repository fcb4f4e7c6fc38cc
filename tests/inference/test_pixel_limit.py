"""Decompression bombs at the inference service: refused from the header, never decoded."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from digits_inference.settings import Settings
from digits_proto import codec, subjects
from digits_proto.base import Principal, Role
from digits_proto.inference import ClassifiedMany, ClassifyMany, ClassifyOne, ManyResult
from digits_proto.runtime import put_bytes, request
from tests.imaging.bombs import png_bomb
from tests.inference.inprocess import running_inference
from tests.inference.test_service import NORMAL, REVERSED, add_dataset, add_model, png

ALICE = Principal(username="alice", role=Role.USER)


@pytest.fixture
async def images(nats_url: str, js, tmp_path: Path) -> AsyncIterator[Path]:
    """The inference service at its default pixel limit; a data root holding a bomb and greys."""
    await add_dataset(js, "d")
    await add_model(js, tmp_path / "nets", "m", "d", {1.0: REVERSED, 2.0: NORMAL})
    root = tmp_path / "images"
    root.mkdir()
    (root / "black.png").write_bytes(png(0))
    (root / "bomb.png").write_bytes(png_bomb())
    (root / "white.png").write_bytes(png(255))
    settings = Settings(
        nats_url=nats_url, data_dir=str(tmp_path / "data"), port=-1, data_roots=[str(root)]
    )
    assert settings.max_pixels == 25_000_000
    async with running_inference(settings):
        yield root


async def test_bomb_png_to_classify_one_is_a_400_naming_the_pixel_limit(images, nc) -> None:
    """A 194 KB PNG declaring 10000×10000 16-bit pixels: 400 on image_file naming count and
    limit, and the service still classifies the next image."""
    command = ClassifyOne(job_id="m", image=png_bomb(), principal=ALICE)
    _, rejected = await request(nc, subjects.CMD_INFERENCE_CLASSIFY_ONE, command)
    assert rejected is not None
    assert (rejected.code, rejected.field) == (400, "image_file")
    assert "100000000 pixels, the limit is 25000000" in rejected.message
    ok = ClassifyOne(job_id="m", image=png(255), principal=ALICE)
    body, rejected = await request(nc, subjects.CMD_INFERENCE_CLASSIFY_ONE, ok)
    assert rejected is None and codec.classify_reply.decode(body).predictions[0][0] == "bright"


async def test_bomb_png_in_classify_many_is_listed_as_an_error_and_the_rest_classified(
    images, nc, js
) -> None:
    """The bomb is one error line naming the limit; the two real images are classified."""
    text = "black.png 0\nbomb.png 1\nwhite.png 2\n"
    ref = await put_bytes(js, subjects.BUCKET_UPLOADS, "lists/bomb.txt", text.encode())
    command = ClassifyMany(job_id="m", image_list=ref, image_folder=str(images), principal=ALICE)
    body, rejected = await request(nc, subjects.CMD_INFERENCE_CLASSIFY_MANY, command, 30)
    assert rejected is None, rejected
    reply = codec.classify_many_reply.decode(body)
    assert isinstance(reply, ClassifiedMany)
    store = await js.object_store(reply.result.bucket)
    result = msgspec.json.decode((await store.get(reply.result.name)).data, type=ManyResult)
    assert [r.predictions[0][0] for r in result.results] == ["dark", "bright"]
    assert [e.line for e in result.errors] == [2]
    assert "100000000 pixels, the limit is 25000000" in result.errors[0].error
