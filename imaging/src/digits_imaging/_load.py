"""Open an image file or bytes as an `L` or `RGB` Pillow image, DIGITS's mode rules (§1.5)."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

from PIL import Image, ImageOps

# A decompression-bomb guard: anything above this many pixels is refused, not decoded.
MAX_PIXELS = 100_000_000


class ImageLoadError(Exception):
    """The file is not an image we can decode (the message says why)."""


def load_image(source: str | Path | bytes, channels: int) -> Image.Image:
    """Decode `source` and convert it to `L` (channels=1) or `RGB` (channels=3).

    Transparent images (LA, RGBA, P with transparency) are composited on white, CMYK and
    YCbCr become RGB, 16-bit images are scaled to 8 bits, EXIF orientation is applied.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            Image.MAX_IMAGE_PIXELS = MAX_PIXELS
            image = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageLoadError(f"image too large (over {MAX_PIXELS} pixels)") from e
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageLoadError(f"cannot decode image: {e}") from e
    image = ImageOps.exif_transpose(image) or image
    return _to_mode(image, "L" if channels == 1 else "RGB")


def _to_mode(image: Image.Image, target: str) -> Image.Image:
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        image = image.point(lambda v: v / 256).convert("L")
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
