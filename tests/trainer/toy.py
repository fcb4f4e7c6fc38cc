"""A tiny separable image set (28×28 gray, 3 pattern classes) written as a DIGITS dataset."""

from __future__ import annotations

import io
from pathlib import Path

import mxnet as mx
import numpy as np
from PIL import Image

LABELS = ["horizontal", "vertical", "square"]


def toy_images(per_class: int, seed: int = 0, size: int = 28) -> tuple[np.ndarray, np.ndarray]:
    """Noisy horizontal stripes, vertical stripes and a bright square: N×1×H×W uint8, labels."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for label in range(len(LABELS)):
        for _ in range(per_class):
            img = rng.integers(0, 60, (size, size)).astype(np.float32)
            phase = rng.integers(0, 4)
            if label == 0:
                img[phase::4, :] += 180
            elif label == 1:
                img[:, phase::4] += 180
            else:
                top, left = rng.integers(4, 10, 2)
                img[top : top + 12, left : left + 12] += 180
            images.append(np.clip(img, 0, 255).astype(np.uint8)[None])
            labels.append(label)
    return np.stack(images), np.array(labels, dtype=np.int32)


def png_bytes(image: np.ndarray) -> bytes:
    """One C×H×W uint8 image (C = 1 or 3) as PNG bytes, as the datasets service stores it."""
    pixels = image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def write_rec(
    folder: Path, split: str, images: np.ndarray, labels: np.ndarray, corrupt: bool = False
) -> tuple[Path, Path]:
    """Pack a split as `<split>.rec`/`<split>.idx` the way COMMON fixes it (PNG payloads)."""
    rec, idx = folder / f"{split}.rec", folder / f"{split}.idx"
    writer = mx.recordio.MXIndexedRecordIO(str(idx), str(rec), "w")
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        header = mx.recordio.IRHeader(0, float(label), i, 0)
        payload = b"not an image" if corrupt and i == len(labels) - 1 else png_bytes(image)
        writer.write_idx(i, mx.recordio.pack(header, payload))
    writer.close()
    return rec, idx


def write_dataset(
    folder: Path, per_class: int = 40, val_per_class: int = 10, corrupt: bool = False
) -> dict[str, Path]:
    """Train and val splits, mean.npy and labels.txt in `folder`; returns the file paths.

    `corrupt` makes the last train record's payload something that is not an image.
    """
    folder.mkdir(parents=True, exist_ok=True)
    train_x, train_y = toy_images(per_class, seed=1)
    val_x, val_y = toy_images(val_per_class, seed=2)
    files: dict[str, Path] = {}
    files["train.rec"], files["train.idx"] = write_rec(folder, "train", train_x, train_y, corrupt)
    files["val.rec"], files["val.idx"] = write_rec(folder, "val", val_x, val_y)
    files["mean.npy"] = folder / "mean.npy"
    np.save(files["mean.npy"], train_x.astype(np.float32).mean(axis=0))
    files["labels.txt"] = folder / "labels.txt"
    files["labels.txt"].write_text("\n".join(LABELS) + "\n")
    return files
