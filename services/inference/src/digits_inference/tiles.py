"""Pictures of arrays: feature-map and filter tiles in viridis, heat-map overlays, as PNG bytes."""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image

# Viridis sampled at 9 evenly spaced points; linear interpolation between them is within a few
# levels of matplotlib's 256-entry table, without depending on matplotlib.
_VIRIDIS_ANCHORS = np.array(
    [
        [68, 1, 84],
        [71, 44, 122],
        [59, 81, 139],
        [44, 113, 142],
        [33, 144, 141],
        [39, 173, 129],
        [92, 200, 99],
        [170, 220, 50],
        [253, 231, 37],
    ],
    dtype=np.float64,
)
_X = np.linspace(0.0, 1.0, len(_VIRIDIS_ANCHORS))
VIRIDIS = np.stack(
    [np.interp(np.linspace(0, 1, 256), _X, _VIRIDIS_ANCHORS[:, c]) for c in range(3)], axis=1
).astype(np.uint8)

MIN_CELL = 48  # each tile is upscaled to at least this many pixels a side, to stay readable
MAX_WIDTH = 1200  # DIGITS's cap on a tiled picture's width
MAX_TILES = 256  # a layer with more maps shows its first 256 (the statistics cover all)
PAD = 1


def normalise(values: np.ndarray) -> np.ndarray:
    """Values scaled to 0..1 over their own range (a constant array becomes zeros)."""
    lo, hi = float(values.min()), float(values.max())
    if not math.isfinite(lo) or not math.isfinite(hi) or hi <= lo:
        return np.zeros_like(values, dtype=np.float64)
    return (values.astype(np.float64) - lo) / (hi - lo)


def colourise(unit: np.ndarray) -> np.ndarray:
    """0..1 values → H×W×3 uint8 viridis colours."""
    return VIRIDIS[np.clip((unit * 255).round(), 0, 255).astype(np.intp)]


def grid(maps: np.ndarray) -> np.ndarray:
    """N×H×W maps → one near-square tiled array (padding = NaN, drawn white)."""
    n, h, w = maps.shape
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    out = np.full((rows * (h + PAD) - PAD, cols * (w + PAD) - PAD), np.nan)
    for i in range(n):
        r, c = divmod(i, cols)
        out[r * (h + PAD) : r * (h + PAD) + h, c * (w + PAD) : c * (w + PAD) + w] = maps[i]
    return out


def as_maps(array: np.ndarray) -> np.ndarray | None:
    """An activation or weight array as N×H×W maps to tile (None when it has no picture).

    4-D N×C×H×W: C maps of the first sample (activations) or, for weights O×I×kH×kW, the first
    input channel of every filter; 2-D 1×K (a vector): one near-square map of K cells.
    """
    if array.ndim == 4:
        maps = array[0] if array.shape[0] == 1 else array[:, 0]
        return maps[:MAX_TILES]
    if array.ndim == 2 and array.shape[0] == 1 and array.shape[1] > 1:
        k = array.shape[1]
        side = math.ceil(math.sqrt(k))
        cells = np.full(side * side, np.nan)
        cells[:k] = array[0]
        return cells.reshape(1, side, side)
    return None


def tile_png(array: np.ndarray) -> bytes | None:
    """The tiled viridis picture of `array` (normalised over the whole array), or None."""
    maps = as_maps(array)
    if maps is None:
        return None
    tiled = grid(maps.astype(np.float64))
    finite = np.isfinite(tiled)
    unit = np.zeros_like(tiled)
    if finite.any():
        unit[finite] = normalise(tiled[finite])
    rgb = colourise(unit)
    rgb[~finite] = 255
    h, w = rgb.shape[:2]
    cell = max(maps.shape[1], maps.shape[2])
    scale = max(1, math.ceil(MIN_CELL / max(cell, 1)))
    scale = max(1, min(scale, MAX_WIDTH // max(w, 1)))
    return png(Image.fromarray(rgb).resize((w * scale, h * scale), Image.NEAREST))


def image_grid_png(pictures: list[np.ndarray], cell: int = 64) -> bytes:
    """C×H×W 0–255 images side by side in a near-square grid on white (top-N mosaics)."""
    cols = math.ceil(math.sqrt(len(pictures)))
    rows = math.ceil(len(pictures) / cols)
    canvas = Image.new("RGB", (cols * (cell + 2), rows * (cell + 2)), (255, 255, 255))
    for i, chw in enumerate(pictures):
        hwc = np.clip(chw, 0, 255).astype(np.uint8).transpose(1, 2, 0)
        picture = Image.fromarray(hwc[:, :, 0] if hwc.shape[2] == 1 else hwc[:, :, :3])
        r, c = divmod(i, cols)
        canvas.paste(picture.convert("RGB").resize((cell, cell)), (c * (cell + 2), r * (cell + 2)))
    return png(canvas)


def overlay_png(image_chw: np.ndarray, heat: np.ndarray, alpha: float = 0.45) -> bytes:
    """A heat map (h×w, any range) blended in viridis over the C×H×W 0–255 input image."""
    c, h, w = image_chw.shape
    base = image_chw.transpose(1, 2, 0)
    base = np.repeat(base, 3, axis=2) if c == 1 else base[:, :, :3]
    heat_img = Image.fromarray((normalise(heat) * 255).astype(np.uint8)).resize(
        (w, h), Image.BILINEAR
    )
    colour = colourise(np.asarray(heat_img, dtype=np.float64) / 255.0).astype(np.float64)
    mixed = (1 - alpha) * np.clip(base, 0, 255) + alpha * colour
    picture = Image.fromarray(mixed.round().astype(np.uint8))
    scale = max(1, math.ceil(128 / max(h, w)))
    return png(picture.resize((w * scale, h * scale), Image.BILINEAR))


def png(picture: Image.Image) -> bytes:
    """PNG bytes of a Pillow image."""
    out = io.BytesIO()
    picture.save(out, format="PNG")
    return out.getvalue()
