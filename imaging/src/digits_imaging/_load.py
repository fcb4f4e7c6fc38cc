"""Open an image file or bytes as an `L` or `RGB` Pillow image, DIGITS's mode rules (§1.5)."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

# The default pixel limit (classify and dataset builds): a larger image is refused from its
# header, before a byte of it is decoded (a 200 KB PNG can declare 10000×10000 16-bit pixels).
MAX_PIXELS = 25_000_000
# Pillow's own guard, set once and deliberately: it warns above this and raises above twice
# this inside `Image.open`, for any Pillow use in the process. Every limit is clamped to it, so
# its warning never fires for an image our own check would let through.
CEILING_PIXELS = 1_000_000_000
Image.MAX_IMAGE_PIXELS = CEILING_PIXELS
ORIENTATION = 0x0112  # the EXIF tag
WIDE_INT_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N")


class ImageLoadError(Exception):
    """The file is not an image we can decode (the message says why)."""


class ImageTooLarge(ImageLoadError):
    """The image declares more pixels than the limit; nothing of it was decoded."""

    def __init__(self, pixels: int, limit: int, size: tuple[int, int] | None = None):
        shape = f"{size[0]}×{size[1]} = " if size else "over "
        super().__init__(f"Image too large: {shape}{pixels} pixels, the limit is {limit}")
        self.pixels, self.limit = pixels, limit


def load_image(
    source: str | Path | bytes,
    channels: int,
    min_size: tuple[int, int] | None = None,
    max_pixels: int = MAX_PIXELS,
) -> Image.Image:
    """Decode `source` and convert it to `L` (channels=1) or `RGB` (channels=3).

    With `min_size` (width, height), a JPEG may be decoded at a reduced scale (1/2, 1/4, 1/8
    in the DCT domain) as long as both sides stay at least that large in any orientation:
    several times faster for camera photos packed to small sizes.

    Transparent images (LA, RGBA, P with transparency) are composited on white, CMYK and
    YCbCr become RGB, 16-bit images are scaled to 8 bits, EXIF orientation is applied.

    ImageTooLarge when the header declares more than `max_pixels` (at most CEILING_PIXELS):
    `Image.open` reads only the header, so the check comes before any decoding.
    """
    limit = min(max_pixels, CEILING_PIXELS)
    try:
        image = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
        pixels = image.width * image.height
        if pixels > limit:
            image.close()
            raise ImageTooLarge(pixels, limit, image.size)
        if min_size is not None and image.format == "JPEG":
            side = max(min_size)  # square: EXIF may still rotate the image by 90°
            image.draft("L" if channels == 1 else "RGB", (side, side))
        image.load()
    except Image.DecompressionBombError as e:  # over twice Pillow's ceiling
        raise ImageTooLarge(2 * CEILING_PIXELS, limit) from e
    except Image.DecompressionBombWarning as e:  # over the ceiling, where warnings are errors
        raise ImageTooLarge(CEILING_PIXELS, limit) from e
    except Image.UnidentifiedImageError as e:  # its message names a BytesIO's address
        raise ImageLoadError("cannot identify image file (not an image Pillow can read)") from e
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageLoadError(f"cannot decode image: {e}") from e
    with contextlib.suppress(Exception):  # broken EXIF metadata: keep the pixels as stored
        if image.getexif().get(ORIENTATION, 1) != 1:  # exif_transpose copies even when upright
            image = ImageOps.exif_transpose(image) or image
    return _to_mode(image, "L" if channels == 1 else "RGB")


def _to_mode(image: Image.Image, target: str) -> Image.Image:
    if image.mode in WIDE_INT_MODES:
        # 16-bit (any byte order) and 32-bit integer pixels: keep the high byte, as v / 256.
        values = np.asarray(image).astype(np.int64) // 256
        image = Image.fromarray(np.clip(values, 0, 255).astype(np.uint8))
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba).convert("RGB")
    if image.mode == "1":
        image = image.convert("L")
    if image.mode not in ("L", "RGB"):
        try:
            image = image.convert("RGB")
        except ValueError as e:
            raise ImageLoadError(f"unsupported image mode {image.mode}") from e
    return image if image.mode == target else image.convert(target)
