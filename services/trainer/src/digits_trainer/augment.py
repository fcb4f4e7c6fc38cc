"""Training augmentations (DIGITS §2.1, for every network): vectorised over a float32 batch.

Each takes N×C×H×W pixels on a 0-255 scale and a NumPy generator; validation never augments.
Whitening is not here: it changes what the network sees at inference too, so it lives in the
network's preprocessing (nets.Preprocess).
"""

from __future__ import annotations

import mxnet as mx
import numpy as np

from digits_proto.models import TrainSpec

QUARTERS = {"rot90": (0, 1, 3), "rot180": (0, 2), "rotall": (0, 1, 2, 3)}


def augmenting(spec: TrainSpec) -> bool:
    """True if the spec asks for any batch augmentation."""
    return (
        spec.aug_flip != "none"
        or spec.aug_quad_rot != "none"
        or spec.aug_rot > 0
        or spec.aug_scale > 0
        or spec.aug_noise > 0
        or spec.aug_contrast > 0
        or spec.aug_hsv_use
    )


def augment(x: np.ndarray, spec: TrainSpec, rng: np.random.Generator) -> np.ndarray:
    """Apply the spec's augmentations in DIGITS's order: flips, rotations, scale, color, noise."""
    if spec.aug_flip in ("fliplr", "fliplrud"):
        x = flip(x, rng, axis=3)
    if spec.aug_flip in ("flipud", "fliplrud"):
        x = flip(x, rng, axis=2)
    if spec.aug_quad_rot != "none":
        x = quarter_turns(x, QUARTERS[spec.aug_quad_rot], rng)
    if spec.aug_rot > 0 or spec.aug_scale > 0:
        x = rotate_scale(x, spec.aug_rot, spec.aug_scale, rng)
    if spec.aug_hsv_use and x.shape[1] == 3:
        x = hsv_shift(x, (spec.aug_hsv_h, spec.aug_hsv_s, spec.aug_hsv_v), rng)
    if spec.aug_contrast > 0:
        factor = rng.uniform(1 - spec.aug_contrast, 1 + spec.aug_contrast, (len(x), 1, 1, 1))
        mean = x.mean(axis=(2, 3), keepdims=True)
        x = np.clip((x - mean) * factor.astype(np.float32) + mean, 0, 255)
    if spec.aug_noise > 0:
        noise = rng.normal(0, spec.aug_noise * 255, x.shape).astype(np.float32)
        x = np.clip(x + noise, 0, 255)
    return x


def flip(x: np.ndarray, rng: np.random.Generator, axis: int) -> np.ndarray:
    """Mirror a random half of the images along `axis`."""
    chosen = rng.random(len(x)) < 0.5
    x = x.copy()
    x[chosen] = np.flip(x[chosen], axis=axis)
    return x


def quarter_turns(x: np.ndarray, choices: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Rotate each image by a random multiple of 90° from `choices` (non-square: 180° only)."""
    if x.shape[2] != x.shape[3]:
        choices = tuple(k for k in choices if k % 2 == 0)
    turns = rng.choice(choices, len(x))
    out = x.copy()
    for k in set(turns.tolist()) - {0}:
        out[turns == k] = np.rot90(x[turns == k], k, axes=(2, 3))
    return out


def rotate_scale(
    x: np.ndarray, degrees: float, scale_std: float, rng: np.random.Generator
) -> np.ndarray:
    """Rotate by U[-degrees, degrees] and zoom by N(1, scale_std), bilinear, as one batch op."""
    n = len(x)
    angle = np.deg2rad(rng.uniform(-degrees, degrees, n))
    scale = np.clip(rng.normal(1.0, scale_std, n), 0.5, 2.0) if scale_std > 0 else np.ones(n)
    cos, sin = np.cos(angle) / scale, np.sin(angle) / scale
    theta = np.stack([cos, -sin, np.zeros(n), sin, cos, np.zeros(n)], axis=1)
    grid = mx.nd.GridGenerator(
        mx.nd.array(theta), transform_type="affine", target_shape=x.shape[2:]
    )
    return mx.nd.BilinearSampler(mx.nd.array(x), grid).asnumpy()


def hsv_shift(
    x: np.ndarray, stddev: tuple[float, float, float], rng: np.random.Generator
) -> np.ndarray:
    """Shift hue (wrapping), saturation and value per image by N(0, stddev) on a 0-1 scale."""
    rgb = x.transpose(0, 2, 3, 1) / 255.0
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    top, bottom = rgb.max(-1), rgb.min(-1)
    span = top - bottom
    safe = np.where(span == 0, 1, span)
    hue = np.where(
        top == r, (g - b) / safe % 6, np.where(top == g, (b - r) / safe + 2, (r - g) / safe + 4)
    )
    hue = np.where(span == 0, 0, hue) / 6.0
    sat = np.where(top == 0, 0, span / np.where(top == 0, 1, top))
    shifts = rng.normal(0, stddev, (len(x), 3)).astype(np.float32)
    hue = (hue + shifts[:, 0, None, None]) % 1.0
    sat = np.clip(sat + shifts[:, 1, None, None], 0, 1)
    val = np.clip(top + shifts[:, 2, None, None], 0, 1)
    i = np.floor(hue * 6).astype(np.int32) % 6
    f = hue * 6 - np.floor(hue * 6)
    p, q, t = val * (1 - sat), val * (1 - f * sat), val * (1 - (1 - f) * sat)
    table = [(val, t, p), (q, val, p), (p, val, t), (p, q, val), (t, p, val), (val, p, q)]
    out = np.zeros_like(rgb)
    for k, (cr, cg, cb) in enumerate(table):
        where = i == k
        out[..., 0][where], out[..., 1][where], out[..., 2][where] = (
            cr[where],
            cg[where],
            cb[where],
        )
    return (out * 255.0).transpose(0, 3, 1, 2).astype(np.float32)
