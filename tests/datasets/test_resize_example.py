"""The form's "See example": the datasets service resizes the sample; the gateway renders it."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest
from PIL import Image

from digits_datasets.errors import InvalidField
from digits_datasets.example import resize_example
from digits_datasets.settings import Settings
from digits_gateway.app import create_app
from digits_proto import subjects
from digits_proto.datasets import ResizeExample
from tests.gateway.accounts import seed_accounts, sign_in
from tests.gateway.conftest import make_settings, running, wait_ready
from tests.gateway.fake_backend import FakeBackend

SAMPLE = (Path(__file__).parents[2] / "web/static/img/resize-example.jpg").read_bytes()


@pytest.mark.parametrize("mode", ["squash", "crop", "fill", "half_crop"])
def test_example_has_the_asked_size_in_every_mode(mode: str) -> None:
    """Each resize mode gives exactly width×height, as a PNG by default."""
    reply = resize_example(ResizeExample(image=SAMPLE, width=100, height=40, resize_mode=mode))
    shown = Image.open(io.BytesIO(reply.image))
    assert (shown.size, shown.format, reply.media_type) == ((100, 40), "PNG", "image/png")
    assert reply.encoded_size == len(reply.image) and not reply.scaled_for_display


def test_raw_and_jpeg_sizes_are_those_of_a_stored_record() -> None:
    """Raw = H×W×C bytes (shown as PNG); jpg is the JPEG itself; grayscale has one channel."""
    raw = resize_example(ResizeExample(image=SAMPLE, width=30, height=20, encoding="none"))
    assert raw.encoded_size == 30 * 20 * 3 and raw.media_type == "image/png"
    gray = resize_example(ResizeExample(image=SAMPLE, width=30, height=20, channels=1))
    assert Image.open(io.BytesIO(gray.image)).mode == "L"
    jpg = resize_example(ResizeExample(image=SAMPLE, width=64, height=64, encoding="jpg"))
    assert jpg.media_type == "image/jpeg" and Image.open(io.BytesIO(jpg.image)).format == "JPEG"


def test_a_record_too_big_to_send_is_shown_scaled_with_its_true_size() -> None:
    """A huge noisy PNG is replaced by a small JPEG preview; encoded_size stays the real one."""
    reply = resize_example(ResizeExample(image=SAMPLE, width=1600, height=400, resize_mode="fill"))
    assert reply.scaled_for_display and reply.encoded_size > 600_000
    assert len(reply.image) < 600_000 and (reply.width, reply.height) == (1600, 400)


def test_bad_settings_and_bad_image_name_the_field() -> None:
    """Out-of-range settings and undecodable bytes are refusals naming the field."""
    with pytest.raises(InvalidField) as e:
        resize_example(ResizeExample(image=SAMPLE, width=0))
    assert e.value.field == "resize_width"
    with pytest.raises(InvalidField) as e:
        resize_example(ResizeExample(image=b"not an image"))
    assert e.value.field == "image"


async def test_gateway_route_answers_html_and_json_through_the_service(
    service: Settings, nc, js, nats_url: str, tmp_path: Path
) -> None:
    """POST /datasets/images/resize-example: DIGITS's HTML snippet, JSON on request, 400s."""
    fake = FakeBackend(nc, js)  # the other services, so that the gateway is ready
    await fake.start(tuple(s for s in subjects.BACKEND_SERVICES if s != subjects.SERVICE_DATASETS))
    try:
        await seed_accounts(js)
        async with running(create_app(make_settings(nats_url, tmp_path / "gw"))) as client:
            await wait_ready(client, timeout=20)
            await sign_in(client, "alice")
            form = {
                "width": "48",
                "height": "32",
                "channels": "3",
                "resize_mode": "crop",
                "encoding": "png",
                "backend": "lmdb",
            }
            r = await client.post("/datasets/images/resize-example", data=form)
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
            assert 'width="48" height="32"' in r.text and "bytes per image" in r.text
            r = await client.post(
                "/datasets/images/resize-example",
                data=form,
                headers={"Accept": "application/json"},
            )
            body = r.json()
            data = base64.b64decode(body["image"].split(",", 1)[1])
            assert Image.open(io.BytesIO(data)).size == (48, 32)
            assert body["encoded_size"] == len(data)
            for field, value in (("channels", "2"), ("width", "0"), ("resize_mode", "x")):
                r = await client.post(
                    "/datasets/images/resize-example", data={**form, field: value}
                )
                assert r.status_code == 400 and field in r.json()["errors"], (field, r.text)
    finally:
        await fake.stop()
