#!/usr/bin/env python3
"""Classify images with this exported DIGITS model: `python classify.py IMAGE...` (needs mxnet,
numpy and pillow). Prints one JSON object per image: {"<path>": [[label, percent], ...top 5]}."""

import json
import sys
import warnings
from pathlib import Path

import mxnet as mx
import numpy as np
from PIL import Image, ImageOps

HERE = Path(__file__).resolve().parent


def load(path, channels):
    """Decode as DIGITS does: alpha over white, 16-bit to 8-bit, then L or RGB."""
    image = Image.open(path)
    image = ImageOps.exif_transpose(image) or image
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        image = Image.fromarray(
            (np.asarray(image).astype(np.int64) // 256).clip(0, 255).astype("uint8")
        )
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255,) * 4), rgba).convert("RGB")
    return image.convert("L" if channels == 1 else "RGB")


def resize(image, width, height, mode):
    """DIGITS's resize modes: squash, crop, fill and half_crop (padding with noise)."""
    w, h = image.size
    if (w, h) == (width, height):
        return image
    wr, hr = w / width, h / height
    if mode == "squash" or wr == hr:
        return image.resize((width, height), Image.BILINEAR)
    ratio = {"crop": min(wr, hr), "fill": max(wr, hr)}.get(mode, (wr + hr) / 2)
    image = image.resize((max(1, round(w / ratio)), max(1, round(h / ratio))), Image.BILINEAR)
    if mode in ("crop", "half_crop"):
        cw, ch = min(width, image.width), min(height, image.height)
        left, top = (image.width - cw) // 2, (image.height - ch) // 2
        image = image.crop((left, top, left + cw, top + ch))
    if image.size != (width, height):
        bands = len(image.getbands())
        shape = (height, width) if bands == 1 else (height, width, bands)
        noise = np.random.default_rng().integers(0, 256, size=shape, dtype=np.uint8)
        canvas = Image.fromarray(noise, image.mode)
        canvas.paste(image, ((width - image.width) // 2, (height - image.height) // 2))
        image = canvas
    return image


def preprocess(path, info):
    """Raw 0-255 float32 1xCxHxW: the network subtracts the mean and scales by itself."""
    height, width, channels = info["image dimensions"]
    pixels = np.asarray(resize(load(path, channels), width, height, info["image resize mode"]))
    chw = pixels.astype(np.float32).reshape(height, width, -1).transpose(2, 0, 1)
    _, ih, iw = info["input shape"]
    top, left = (height - ih) // 2, (width - iw) // 2
    return chw[np.newaxis, :, top : top + ih, left : left + iw]


def main(paths):
    info = json.loads((HERE / "info.json").read_text())
    labels = (HERE / info["labels file"]).read_text().splitlines()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = mx.gluon.SymbolBlock.imports(
            str(HERE / info["model file"]),
            ["data"],
            str(HERE / info["snapshot file"]),
            ctx=mx.cpu(),
        )
    for path in paths:
        logits = net(mx.nd.array(preprocess(path, info))).asnumpy().ravel().astype(np.float64)
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        order = [int(i) for i in np.argsort(-probs, kind="stable") if i < len(labels)][:5]
        top = [[labels[i], round(100.0 * float(probs[i]), 2)] for i in order]
        print(json.dumps({path: top}))  # noqa: T201 (a command-line tool's output)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
