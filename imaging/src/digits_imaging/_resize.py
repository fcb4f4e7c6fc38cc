"""DIGITS's resize modes (squash, crop, fill, half_crop), as in `digits/utils/image.py`."""

from __future__ import annotations

import numpy as np
from PIL import Image

RESIZE_MODES = ("squash", "crop", "fill", "half_crop")


def resize_image(
    image: Image.Image,
    width: int,
    height: int,
    mode: str = "squash",
    rng: np.random.Generator | None = None,
) -> Image.Image:
    """Resize to exactly `width`×`height`; `fill`/`half_crop` pad with uniform random noise."""
    if mode not in RESIZE_MODES:
        raise ValueError(f"resize mode must be one of {', '.join(RESIZE_MODES)}")
    w, h = image.size
    if (w, h) == (width, height):
        return image
    width_ratio, height_ratio = w / width, h / height
    if mode == "squash" or width_ratio == height_ratio:
        return image.resize((width, height), Image.Resampling.BILINEAR)
    if mode == "crop":
        scale = min(width_ratio, height_ratio)
        return _center_crop(_scale(image, scale), width, height)
    if mode == "fill":
        scale = max(width_ratio, height_ratio)
        return _pad_noise(_scale(image, scale), width, height, rng)
    scale = (width_ratio + height_ratio) / 2  # half_crop: half crop, half fill
    scaled = _scale(image, scale)
    cropped = _center_crop(scaled, min(width, scaled.width), min(height, scaled.height))
    return _pad_noise(cropped, width, height, rng)


def _scale(image: Image.Image, ratio: float) -> Image.Image:
    size = (max(1, round(image.width / ratio)), max(1, round(image.height / ratio)))
    return image.resize(size, Image.Resampling.BILINEAR)


def _center_crop(image: Image.Image, width: int, height: int) -> Image.Image:
    left = (image.width - width) // 2
    top = (image.height - height) // 2
    return image.crop((left, top, left + width, top + height))


def _pad_noise(
    image: Image.Image, width: int, height: int, rng: np.random.Generator | None
) -> Image.Image:
    rng = rng or np.random.default_rng()
    shape = (height, width) if image.mode == "L" else (height, width, len(image.getbands()))
    canvas = Image.fromarray(rng.integers(0, 256, size=shape, dtype=np.uint8), image.mode)
    canvas.paste(image, ((width - image.width) // 2, (height - image.height) // 2))
    return canvas
