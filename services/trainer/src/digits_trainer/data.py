"""Dataset splits from RecordIO into memory (uint8), batched as float32 NCHW with crops."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import mxnet as mx
import numpy as np
from PIL import Image

from digits_trainer.config import ChildConfig, SplitFiles


class BadRecord(ValueError):
    """A record that does not decode to an image of the dataset's shape."""


class Split(NamedTuple):
    """One split preloaded: images N×C×H×W uint8 (RGB order) and integer labels."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


class Data(NamedTuple):
    """What one training job reads: train and optional val splits, and the mean image."""

    train: Split
    val: Split | None
    mean: np.ndarray | None  # float32 C×H×W, 0-255


def load_data(config: ChildConfig) -> Data:
    """Read every split a job needs into memory.

    Preloading is what small datasets want (stack-facts §3: an iterator's threads halve LeNet's
    speed on 2 cores); streaming large datasets is a later step.
    """
    shape = (config.channels, config.height, config.width)
    train = read_split(config.train, config.encoding, shape)
    val = read_split(config.val, config.encoding, shape) if config.val else None
    mean = np.load(config.mean).astype(np.float32) if config.mean else None
    return Data(train=train, val=val, mean=mean)


def read_split(files: SplitFiles, encoding: str, shape: tuple[int, int, int]) -> Split:
    """Decode every record of a .rec/.idx pair (png, jpg, or raw `none` bytes)."""
    record = mx.recordio.MXIndexedRecordIO(files.idx, files.rec, "r")
    try:
        keys = sorted(record.keys)
        images = np.empty((len(keys), *shape), dtype=np.uint8)
        labels = np.empty(len(keys), dtype=np.int32)
        for i, key in enumerate(keys):
            header, payload = mx.recordio.unpack(record.read_idx(key))
            try:
                images[i] = decode_image(payload, encoding, shape)
            except Exception as e:  # a bad record is named, so the job's error says which
                raise BadRecord(f"{Path(files.rec).name} record {key}: {e}") from e
            labels[i] = int(np.asarray(header.label).flat[0])
    finally:
        record.close()
    if not len(labels):
        raise ValueError(f"{Path(files.rec).name} holds no images")
    return Split(images=images, labels=labels)


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


def batches(
    split: Split,
    batch_size: int,
    crop: int | None = None,
    rng: np.random.Generator | None = None,
    shuffle: bool = True,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Batches of float32 pixels (0-255) and float32 labels; the last one may be smaller.

    With `rng` (training): shuffled when asked, randomly cropped. Without (evaluation): in
    order, center-cropped.
    """
    order = rng.permutation(len(split)) if rng is not None and shuffle else np.arange(len(split))
    for start in range(0, len(order), batch_size):
        chosen = order[start : start + batch_size]
        images = split.images[chosen]
        if crop is not None:
            images = (
                random_crop(images, crop, rng) if rng is not None else center_crop(images, crop)
            )
        yield images.astype(np.float32), split.labels[chosen].astype(np.float32)


class Tensors(NamedTuple):
    """A split as host NDArrays, for batches gathered on the MXNet side: uint8 images N×C×H×W
    and float32 labels."""

    images: mx.nd.NDArray
    labels: mx.nd.NDArray

    def __len__(self) -> int:
        return self.labels.shape[0]


# Host copies stay under MXNET_CPU_PARALLEL_SIZE's default (200,000 elements): a larger one runs
# as an OpenMP loop on the main thread, and the second thread team it leaves makes every later
# step on 2 cores ~30% slower (bench/README.md), even where the child's environment is not set.
COPY_ELEMENTS = 100_000


def host_array(values: np.ndarray) -> mx.nd.NDArray:
    """`values` as an NDArray on the CPU (not cpu_pinned), copied in slices of rows."""
    out = mx.nd.empty(values.shape, ctx=mx.cpu(), dtype=values.dtype)
    rows = max(1, COPY_ELEMENTS // max(1, values[0].size)) if len(values) else 1
    for start in range(0, len(values), rows):
        out[start : start + rows] = values[start : start + rows]
    return out


def to_tensors(split: Split) -> Tensors:
    """A preloaded split as host NDArrays (the images stay uint8: a quarter of float32)."""
    return Tensors(host_array(split.images), host_array(split.labels.astype(np.float32)))


def epoch_order(count: int, seed: int, epoch: int, shuffle: bool = True) -> np.ndarray:
    """The sample order of one training epoch: depends only on (seed, epoch)."""
    return np.random.default_rng([seed, epoch]).permutation(count) if shuffle else np.arange(count)


def tensor_batches(
    split: Tensors, batch_size: int, seed: int, epoch: int, shuffle: bool = True, skip: int = 0
) -> Iterator[tuple[mx.nd.NDArray, mx.nd.NDArray]]:
    """One training epoch as `train_batches` orders it, without crops or augmentations, built
    by MXNet: one gather per epoch, then a slice and a cast per batch.

    The batch loop then runs no NumPy and makes no host copy; the gather and the casts are
    asynchronous engine ops, like the bare Gluon loop's slices of a preloaded NDArray.
    """
    first = skip * batch_size
    count = len(split)
    if first >= count:
        return
    images, labels = split.images, split.labels
    if shuffle:
        index = host_array(epoch_order(count, seed, epoch)[first:].astype(np.int64))
        images, labels = images.take(index), labels.take(index)
    else:
        images, labels = images[first:], labels[first:]
    for start in range(0, count - first, batch_size):
        stop = start + batch_size
        yield images[start:stop].astype(np.float32), labels[start:stop]


def train_batches(
    split: Split,
    batch_size: int,
    crop: int | None,
    seed: int,
    epoch: int,
    shuffle: bool = True,
    skip: int = 0,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.random.Generator]]:
    """One training epoch's batches, each with its own generator for crops and augmentations.

    The order depends only on (seed, epoch) and each batch's randomness on (seed, epoch, batch
    number), so a resumed run can start at batch `skip` and draw exactly what an unbroken one
    would have.
    """
    count = len(split)
    order = epoch_order(count, seed, epoch, shuffle)
    for number, start in enumerate(range(0, count, batch_size)):
        if number < skip:
            continue
        rng = np.random.default_rng([seed, epoch, number])
        chosen = order[start : start + batch_size]
        images = split.images[chosen]
        if crop is not None:
            images = random_crop(images, crop, rng)
        yield images.astype(np.float32), split.labels[chosen].astype(np.float32), rng


def random_crop(images: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """A random size×size window of each image (DIGITS's crop in training)."""
    _, _, height, width = images.shape
    tops = rng.integers(0, height - size + 1, len(images))
    lefts = rng.integers(0, width - size + 1, len(images))
    return np.stack(
        [
            img[:, t : t + size, left : left + size]
            for img, t, left in zip(images, tops, lefts, strict=True)
        ]
    )


def center_crop(images: np.ndarray, size: int) -> np.ndarray:
    """The central size×size window (DIGITS's crop in validation and inference)."""
    height, width = images.shape[-2:]
    top, left = (height - size) // 2, (width - size) // 2
    return images[..., top : top + size, left : left + size]
