"""A decompression-bomb PNG through DIGITS's classify route: the gateway's 400 names the field
and the limit (the real gateway over the real inference service)."""

from __future__ import annotations

from tests.imaging.bombs import png_bomb
from tests.inference.test_gateway_routes import client, post  # noqa: F401 - the fixture
from tests.inference.test_service import service  # noqa: F401 - the client's fixture


async def test_classify_one_with_a_bomb_is_a_400_naming_image_file_and_the_limit(
    client,  # noqa: F811
) -> None:
    """DIGITS's form-errors body: `image_file` holds the pixel count and the limit."""
    url = "/models/images/classification/classify_one.json"
    r = await post(client, url, png_bomb(), job_id="m")
    assert r.status_code == 400, r.text
    (message,) = r.json()["errors"]["image_file"]
    assert "100000000 pixels, the limit is 25000000" in message
