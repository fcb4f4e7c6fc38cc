"""The new-dataset form's "See example": one image resized and encoded as a build would."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from digits_datasets import domain
from digits_datasets.errors import InvalidField
from digits_datasets.packing import encode
from digits_imaging import MAX_PIXELS, ImageLoadError, load_image, resize_image
from digits_proto.datasets import DatasetSpec, ResizedExample, ResizeExample

MAX_REPLY_IMAGE = 600_000  # bytes: a reply must stay well under NATS's 1 MB message cap
DISPLAY_SIDE = 1024


def resize_example(command: ResizeExample, max_pixels: int = MAX_PIXELS) -> ResizedExample:
    """Resize the sample with the form's settings; a record too big to send is shown scaled."""
    spec = DatasetSpec(
        folder_train="-",
        resize_width=command.width,
        resize_height=command.height,
        resize_channels=command.channels,
        resize_mode=command.resize_mode,
        encoding=command.encoding,
    )
    domain.validate_spec("example", spec)
    try:
        image = load_image(command.image, command.channels, max_pixels=max_pixels)
    except ImageLoadError as e:
        raise InvalidField("image", str(e)) from e
    rng = np.random.default_rng(0)
    resized = resize_image(image, command.width, command.height, command.resize_mode, rng=rng)
    stored = encode(resized, command.encoding)
    if command.encoding != "none" and len(stored) <= MAX_REPLY_IMAGE:
        media = "image/jpeg" if command.encoding == "jpg" else "image/png"
        return ResizedExample(
            image=stored,
            media_type=media,
            width=resized.width,
            height=resized.height,
            encoded_size=len(stored),
        )
    # Raw pixels cannot be shown as such, and a huge record cannot travel: show a PNG (or a
    # smaller JPEG when even that is too big).
    shown, scaled = _displayable(resized)
    return ResizedExample(
        image=shown,
        media_type="image/png" if not scaled else "image/jpeg",
        width=resized.width,
        height=resized.height,
        encoded_size=len(stored),
        scaled_for_display=scaled,
    )


def _displayable(image: Image.Image) -> tuple[bytes, bool]:
    buf = io.BytesIO()
    image.save(buf, "PNG")
    if buf.tell() <= MAX_REPLY_IMAGE:
        return buf.getvalue(), False
    small = image.copy()
    small.thumbnail((DISPLAY_SIDE, DISPLAY_SIDE))
    buf = io.BytesIO()
    small.save(buf, "JPEG", quality=85)
    return buf.getvalue(), True
