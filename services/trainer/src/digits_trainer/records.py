"""A record's image as the network sees it (the framing is `digits_proto.recordio`)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


class BadRecord(ValueError):
    """A record that does not decode to an image of the dataset's shape."""


def decode_image(payload: bytes, encoding: str, shape: tuple[int, int, int]) -> np.ndarray:
    """One record's bytes as a C×H×W uint8 array."""
    channels, height, width = shape
    if encoding == "none":
        pixels = np.frombuffer(payload, dtype=np.uint8).reshape(height, width, channels)
    else:
        try:
            with Image.open(io.BytesIO(payload)) as img:
                pixels = np.asarray(img.convert("L" if channels == 1 else "RGB"))
        except OSError:  # PIL's message would name an anonymous BytesIO
            raise ValueError(f"not a readable {encoding} image") from None
        if pixels.ndim == 2:
            pixels = pixels[:, :, None]
    if pixels.shape != (height, width, channels):
        raise ValueError(f"image is {pixels.shape}, the dataset says {(height, width, channels)}")
    return pixels.transpose(2, 0, 1)
