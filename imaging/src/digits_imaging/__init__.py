"""Pixels the same way everywhere: load an image as DIGITS did, resize it with DIGITS's four modes.

A library, not a service: the datasets builder and the inference service must preprocess
identically, so both depend on this one implementation (Pillow + NumPy only, no I/O beyond
opening the file it is given).
"""

from digits_imaging._load import (
    CEILING_PIXELS,
    MAX_PIXELS,
    ImageLoadError,
    ImageTooLarge,
    load_image,
)
from digits_imaging._resize import RESIZE_MODES, resize_image

__all__ = [
    "CEILING_PIXELS",
    "MAX_PIXELS",
    "RESIZE_MODES",
    "ImageLoadError",
    "ImageTooLarge",
    "load_image",
    "resize_image",
]
