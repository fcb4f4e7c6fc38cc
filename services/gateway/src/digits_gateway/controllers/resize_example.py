"""`POST /datasets/images/resize-example`: DIGITS's "See example" on the new-dataset form.

The datasets service resizes the sample photo shipped in `web/static/img/` exactly as a build
would (it owns the imaging code); this route sends it the bytes and renders the answer.
"""

from __future__ import annotations

import base64
import functools
import html
from pathlib import Path
from typing import Any

import msgspec
from litestar import MediaType, Request, Response, post

from digits_gateway import ui
from digits_gateway.controllers._common import require_user
from digits_gateway.deps import Gateway
from digits_gateway.forms import Fields
from digits_gateway.params import read_params, wants_json
from digits_gateway.settings import Settings
from digits_proto import codec, subjects
from digits_proto.datasets import ResizedExample, ResizeExample

SAMPLE = Path("static") / "img" / "resize-example.jpg"


@functools.cache
def _sample(web: Path) -> bytes:
    return (web / SAMPLE).read_bytes()


def sample_bytes(settings: Settings) -> bytes:
    """The sample photo (read once)."""
    return _sample(ui.web_dir(settings))


def example_command(values: dict[str, Any], image: bytes) -> ResizeExample:
    """DIGITS's form fields (`width`, `height`, `channels`, `resize_mode`, `encoding`)."""
    f = Fields(values)
    command = ResizeExample(
        image=image,
        width=f.integer("width", 256, 1, 8192) or 256,
        height=f.integer("height", 256, 1, 8192) or 256,
        channels=f.integer("channels", 3) or 3,
        resize_mode=f.choice("resize_mode", ("crop", "squash", "fill", "half_crop"), "squash"),
        encoding=f.choice("encoding", ("none", "png", "jpg"), "png"),
    )
    if command.channels not in (1, 3):
        f.error("channels", "Not a valid choice: 1 (grayscale) or 3 (color).")
    f.choice("backend", ("lmdb", "hdf5", "tfrecords", "recordio"), "recordio")
    f.check()
    return command


def snippet(reply: ResizedExample, encoding: str) -> str:
    """The HTML DIGITS answers: the image and the size of one stored record."""
    src = f"data:{reply.media_type};base64,{base64.b64encode(reply.image).decode()}"
    note = " (shown as a smaller preview)" if reply.scaled_for_display else ""
    kind = {"none": "raw pixels", "png": "PNG", "jpg": "JPEG q90"}.get(encoding, encoding)
    return (
        f'<figure class="resize-example-result"><img src="{html.escape(src)}" '
        f'width="{reply.width}" height="{reply.height}" '
        f'alt="Sample photo resized to {reply.width}×{reply.height}">'
        f"<figcaption>{reply.width}×{reply.height}, {reply.encoded_size:,} bytes per image "
        f"({html.escape(kind)}){note}</figcaption></figure>"
    )


@post("/datasets/images/resize-example", status_code=200)
async def resize_example(request: Request[Any, Any, Any], gw: Gateway) -> Response[Any]:
    """HTML snippet (DIGITS), or JSON with a data URL when asked for JSON; bad fields: 400."""
    params = await read_params(request)
    command = msgspec.structs.replace(
        example_command(params.values, sample_bytes(gw.settings)), principal=require_user(request)
    )
    reply: ResizedExample = await gw.bus.ask(
        subjects.CMD_DATASETS_RESIZE_EXAMPLE, command, codec.resize_example_reply
    )
    if wants_json(request):
        data = base64.b64encode(reply.image).decode()
        return Response(
            {
                "image": f"data:{reply.media_type};base64,{data}",
                "width": reply.width,
                "height": reply.height,
                "encoded_size": reply.encoded_size,
                "scaled_for_display": reply.scaled_for_display,
            }
        )
    return Response(snippet(reply, command.encoding), media_type=MediaType.HTML)
