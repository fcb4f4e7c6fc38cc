"""Open an image file or bytes as an `L` or `RGB` Pillow image, DIGITS's mode rules (§1.5)."""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

# A decompression-bomb guard: anything above this many pixels is refused, not decoded.
MAX_PIXELS = 100_000_000
ORIENTATION = 0x0112  # the EXIF tag
WIDE_INT_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N")


class ImageLoadError(Exception):
    """The file is not an image we can decode (the message says why)."""


def load_image(
    source: str | Path | bytes, channels: int, min_size: tuple[int, int] | None = None
) -> Image.Image:
    """Decode `source` and convert it to `L` (channels=1) or `RGB` (channels=3).

    With `min_size` (width, height), a JPEG may be decoded at a reduced scale (1/2, 1/4, 1/8
    in the DCT domain) as long as both sides stay at least that large in any orientation:
    several times faster for camera photos packed to small sizes.

    Transparent images (LA, RGBA, P with transparency) are composited on white, CMYK and
    YCbCr become RGB, 16-bit images are scaled to 8 bits, EXIF orientation is applied.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            Image.MAX_IMAGE_PIXELS = MAX_PIXELS
            image = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
            # Checked here too: warning filters are process-wide, so under threads the
            # warning-as-error above is not guaranteed; the header alone tells the size.
            if image.width * image.height > MAX_PIXELS:
                image.close()
                raise Image.DecompressionBombError(f"{image.width}x{image.height}")
            if min_size is not None and image.format == "JPEG":
                side = max(min_size)  # square: EXIF may still rotate the image by 90°
                image.draft("L" if channels == 1 else "RGB", (side, side))
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageLoadError(f"image too large (over {MAX_PIXELS} pixels)") from e
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
