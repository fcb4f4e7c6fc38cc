"""DIGITS's classify routes through the real gateway and the real inference service in-process."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from digits_gateway.app import create_app
from digits_proto import subjects
from tests.gateway.accounts import seed_accounts, sign_in
from tests.gateway.conftest import make_settings, running, wait_ready
from tests.gateway.fake_backend import FakeBackend
from tests.gateway.helpers import until
from tests.inference.nets import export_convnet
from tests.inference.test_service import LABELS, png, service  # noqa: F401
from tests.inference.test_visualizations import SHAPE, add_conv_model

OTHERS = (subjects.SERVICE_DATASETS, subjects.SERVICE_TRAINER, subjects.SERVICE_GPU_BROKER)


@pytest.fixture
async def client(
    nats_url: str,
    nc,
    js,
    tmp_path: Path,
    service,  # noqa: F811
) -> AsyncIterator[httpx.AsyncClient]:
    """A ready gateway over the real inference service; models m, empty and c (a conv net)."""
    await add_conv_model(js, export_convnet(tmp_path / "conv", len(LABELS), SHAPE))
    fake = FakeBackend(nc, js)
    await fake.start(OTHERS)
    settings = make_settings(nats_url, tmp_path, max_upload_bytes=2 * 1024 * 1024)
    await seed_accounts(js)
    async with running(create_app(settings)) as c:
        await wait_ready(c)
        await sign_in(c, "alice")
        await until(lambda: _known(c, "c"))
        yield c
    await fake.stop()


async def _known(c: httpx.AsyncClient, job_id: str) -> bool:
    return (await c.get(f"/models/{job_id}.json")).status_code == 200


def post(c: httpx.AsyncClient, path: str, image: bytes, **data: str):
    """POST a multipart classify request with `image` as image_file."""
    files = {"image_file": ("x.png", image, "image/png")}
    return c.post(path, data=data, files=files)


async def test_classify_one_json_gains_visualizations_when_asked(client) -> None:
    """`show_visualizations` adds layers, total_parameters and a Grad-CAM image to the JSON."""
    url = "/models/images/classification/classify_one.json"
    r = await post(client, url, png(200), job_id="c", show_visualizations="1")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["predictions"] and body["total_parameters"] > 0
    layers = body["visualizations"]
    assert layers[0]["name"] == "data"
    assert (
        sum(layer["weights"]["parameters"] for layer in layers if layer["weights"])
        == (body["total_parameters"])
    )
    assert body["gradcam"]["image"].startswith("data:image/png;base64,")
    assert body["gradcam"]["label"] == body["predictions"][0][0]
    plain = (await post(client, url, png(200), job_id="c")).json()
    assert "visualizations" not in plain and plain["predictions"] == body["predictions"]


async def test_classify_one_page_shows_layer_rows_and_gradcam(client) -> None:
    """The HTML result has the Grad-CAM section, the total and one row per layer output."""
    r = await post(
        client,
        "/models/images/classification/classify_one",
        png(30),
        job_id="c",
        show_visualizations="on",
    )
    assert r.status_code == 200, r.text
    assert 'id="gradcam"' in r.text and 'id="total-parameters"' in r.text
    assert r.text.count('class="vis-activation"') >= 6
    assert r.text.count('class="vis-weights"') == 4


@pytest.mark.parametrize(
    ("job_id", "epoch", "code"),
    [("nope", "", 404), ("empty", "", 409), ("m", "7", 400), ("m", "abc", 400)],
)
async def test_classify_one_refusals_keep_their_status(client, job_id, epoch, code) -> None:
    """Unknown job 404, no snapshot 409, an epoch that does not exist or is no number 400."""
    data = {"job_id": job_id} | ({"snapshot_epoch": epoch} if epoch else {})
    r = await post(client, "/models/images/classification/classify_one.json", png(0), **data)
    assert r.status_code == code, r.text


@pytest.mark.parametrize("kind", ["text", "truncated", "huge"])
async def test_hostile_images_are_400(client, kind) -> None:
    """Not an image, a truncated PNG, a 20000×20000 PNG: each a 400, never a 500."""
    out = io.BytesIO()
    if kind == "huge":
        Image.new("1", (20000, 20000)).save(out, format="PNG")
        image = out.getvalue()
    elif kind == "truncated":
        Image.effect_noise((64, 64), 64).convert("RGB").save(out, format="PNG")
        image = out.getvalue()[:400]
    else:
        image = b"hello, I am a text file"
    r = await post(client, "/models/images/classification/classify_one.json", image, job_id="m")
    assert r.status_code == 400, r.text


async def test_upload_over_the_body_limit_is_refused_before_it_is_read(client) -> None:
    """A body over max_upload_bytes (2 MB here; 64 MB by default) is refused with 413."""
    big = b"\x89PNG" + bytes(3 * 1024 * 1024)
    r = await post(client, "/models/images/classification/classify_one.json", big, job_id="m")
    assert r.status_code == 413
