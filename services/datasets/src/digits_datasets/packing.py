"""The CPU work of a build, run in worker processes: load, resize and encode a chunk of images.

Imports only Pillow, NumPy and digits_imaging (never MXNet or NATS), so spawned workers start fast.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import msgspec
import numpy as np
from PIL import Image

from digits_imaging import MAX_PIXELS, ImageLoadError, load_image, resize_image


class EncodeSpec(msgspec.Struct, frozen=True, kw_only=True):
    """How every image of a dataset is shaped and stored."""

    width: int
    height: int
    channels: int
    resize_mode: str = "squash"
    encoding: str = "png"
    max_pixels: int = MAX_PIXELS  # an image declaring more is a skipped file, never decoded


@dataclass
class ChunkResult:
    """Encoded records in input order, the files that failed, and the pixel sum if asked."""

    records: list[tuple[int, bytes]] = field(default_factory=list)  # (label, image bytes)
    errors: list[tuple[str, int, str]] = field(default_factory=list)  # (path, label, reason)
    pixel_sum: np.ndarray | None = None  # float64 C×H×W over the records


def encode(image: Image.Image, encoding: str) -> bytes:
    """The stored bytes of a resized image: PNG, JPEG quality 90, or raw H×W×C uint8."""
    if encoding == "none":
        return np.asarray(image, dtype=np.uint8).tobytes()
    buf = io.BytesIO()
    if encoding == "jpg":
        image.save(buf, "JPEG", quality=90)
    else:
        image.save(buf, "PNG")
    return buf.getvalue()


def warm() -> None:
    """Nothing: a worker's first task, so that it starts (and imports) before any build."""


def process_chunk(
    items: list[tuple[str, int]], spec: EncodeSpec, want_sum: bool, seed: int
) -> ChunkResult:
    """Load, resize and encode each (path, label); a bad file is an error entry, never fatal."""
    rng = np.random.default_rng(seed)  # fill/half_crop noise, reproducible per chunk
    result = ChunkResult()
    # Summed as integers in the image's own H×W(×C) layout (exact, and no float copy or
    # transpose per image); turned into float64 C×H×W once per chunk.
    shape = (spec.height, spec.width) if spec.channels == 1 else (spec.height, spec.width, 3)
    total = np.zeros(shape, np.int64) if want_sum else None
    for path, label in items:
        try:
            image = load_image(
                path, spec.channels, min_size=(spec.width, spec.height), max_pixels=spec.max_pixels
            )
            image = resize_image(image, spec.width, spec.height, spec.resize_mode, rng=rng)
            data = encode(image, spec.encoding)
        except Exception as e:  # noqa: BLE001 - any failure on one file only skips that file
            result.errors.append((path, label, _reason(e)))
            continue
        result.records.append((label, data))
        if total is not None:
            total += np.asarray(image)
    if total is not None:
        chw = total[None] if total.ndim == 2 else total.transpose(2, 0, 1)
        result.pixel_sum = chw.astype(np.float64)
    return result


def _reason(e: Exception) -> str:
    text = str(e) or type(e).__name__
    return text if isinstance(e, ImageLoadError) else f"{type(e).__name__}: {text}"
