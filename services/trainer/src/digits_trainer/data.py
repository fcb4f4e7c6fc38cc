"""Dataset splits from RecordIO into memory (uint8), batched as float32 NCHW with crops."""

from __future__ import annotations

import hashlib
import os
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import mxnet as mx
import numpy as np

from digits_trainer.config import ChildConfig, ShardFiles, SplitFiles
from digits_trainer.records import BadRecord, decode_image
from digits_trainer.stream import RecordImages, decode_threads


class Split(NamedTuple):
    """One split: images N×C×H×W uint8 (RGB order) — preloaded, or read from disk as rows are
    asked for (`RecordImages`, for splits past the preload budget) — and integer labels."""

    images: np.ndarray | RecordImages
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


class Data(NamedTuple):
    """What one training job reads: train and optional val splits, and the mean image."""

    train: Split
    val: Split | None
    mean: np.ndarray | None  # float32 C×H×W, 0-255


def load_data(config: ChildConfig) -> Data:
    """The splits a job needs: preloaded when together they fit `config.preload_bytes`
    (stack-facts §3: an iterator's threads halve LeNet's speed on 2 cores), else streamed."""
    shape = (config.channels, config.height, config.width)
    splits = [config.train] + ([config.val] if config.val else [])
    raw = sum(_entries(files) for files in splits) * int(np.prod(shape))
    read = stream_split if config.preload_bytes and raw > config.preload_bytes else read_split
    train = read(config.train, config.encoding, shape)
    val = read(config.val, config.encoding, shape) if config.val else None
    mean = np.load(config.mean).astype(np.float32) if config.mean else None
    return Data(train=train, val=val, mean=mean)


def stream_split(files: SplitFiles, encoding: str, shape: tuple[int, int, int]) -> Split:
    """A split read from its shards batch by batch; only its labels are read now."""
    shards = files.all_shards()
    images = RecordImages(shards, encoding, shape, decode_threads(shape))
    if files.entries and len(images) != files.entries:
        images.close()
        raise ValueError(
            f"{_names(shards)} {len(images)} records, the dataset says {files.entries}"
        )
    if not len(images):
        images.close()
        raise ValueError(f"{Path(files.rec).name} holds no images")
    return Split(images=images, labels=images.labels())


def _entries(files: SplitFiles) -> int:
    return files.entries or sum(_idx_lines(shard.idx) for shard in files.all_shards())


def read_split(files: SplitFiles, encoding: str, shape: tuple[int, int, int]) -> Split:
    """A split's images and labels: from its decoded cache when `files.key` names the blobs'
    content and a valid cache file exists, else decoded from RecordIO (and cached)."""
    cached = decoded_path(files, encoding, shape)
    if cached is None:
        return decode_split(files, encoding, shape)
    split = load_decoded(cached, shape)
    if split is None:
        split = decode_split(files, encoding, shape)
        if split.images.nbytes <= DECODED_CACHE_MAX_BYTES:
            save_decoded(cached, split)
    return split


# Bump when the cache file's layout or the decoding changes: old files are then never read.
DECODED_VERSION = 1
# The cache holds raw pixels: past this a split's copy would cost more disk than its restart
# saves (and its checksum more time); such splits are decoded at each start.
DECODED_CACHE_MAX_BYTES = 2 * 1024**3


def decoded_path(files: SplitFiles, encoding: str, shape: tuple[int, int, int]) -> Path | None:
    """Where a split's decoded arrays are cached: next to its (first) `.rec` blob, so the blob
    cache's cleaning takes it along, named by the blobs' digests, the shape and the encoding;
    None without a content key (local files that may change under the same name)."""
    if not files.key:
        return None
    name = f"{DECODED_VERSION}|{files.key}|{encoding}|{'x'.join(map(str, shape))}"
    return Path(files.rec).parent / f"decoded-{hashlib.sha256(name.encode()).hexdigest()[:24]}.npz"


def content_digest(images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """A SHA-256 of the arrays' bytes, stored with them: a damaged cache file is never used."""
    digest = hashlib.sha256(np.ascontiguousarray(images).data)
    digest.update(np.ascontiguousarray(labels).data)
    return np.frombuffer(digest.digest(), dtype=np.uint8)


def load_decoded(path: Path, shape: tuple[int, int, int]) -> Split | None:
    """The cached split, or None when it is missing, partial, damaged or of another shape."""
    try:
        with np.load(path, allow_pickle=False) as saved:
            images, labels, digest = saved["images"], saved["labels"], saved["digest"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    if (
        images.dtype != np.uint8
        or images.shape[1:] != shape
        or labels.dtype != np.int32
        or labels.shape != images.shape[:1]
        or not len(labels)
        or not np.array_equal(digest, content_digest(images, labels))
    ):
        return None
    return Split(images=images, labels=labels)


def save_decoded(path: Path, split: Split) -> None:
    """Write the cache file atomically (a reader sees the whole file or none); a cache that
    cannot be written only costs the next start its decoding."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".decoded-", suffix=".npz")
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as f:
            digest = content_digest(split.images, split.labels)
            np.savez(f, images=split.images, labels=split.labels, digest=digest)
        os.replace(tmp, path)
    except OSError:
        pass
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def decode_split(files: SplitFiles, encoding: str, shape: tuple[int, int, int]) -> Split:
    """Decode every record of a split's .rec/.idx shards, in order, into one preallocated array
    (png, jpg, or raw `none` bytes)."""
    shards = files.all_shards()
    total = _entries(files)
    images = np.empty((total, *shape), dtype=np.uint8)
    labels = np.empty(total, dtype=np.int32)
    filled = 0
    for shard in shards:
        filled = _read_shard(shard, encoding, images, labels, filled)
    if filled != total:
        raise ValueError(f"{_names(shards)} {filled} records, the dataset says {total}")
    if not filled:
        raise ValueError(f"{Path(files.rec).name} holds no images")
    return Split(images=images, labels=labels)


def _read_shard(
    shard: ShardFiles, encoding: str, images: np.ndarray, labels: np.ndarray, start: int
) -> int:
    """Decode one shard's records into `images`/`labels` from row `start`; the next free row."""
    name = Path(shard.rec).name
    record = mx.recordio.MXIndexedRecordIO(shard.idx, shard.rec, "r")
    try:
        keys = sorted(record.keys)
        if start + len(keys) > len(labels):
            raise ValueError(f"{name} holds more records than the dataset says ({len(labels)})")
        for i, key in enumerate(keys, start):
            header, payload = mx.recordio.unpack(record.read_idx(key))
            try:
                images[i] = decode_image(payload, encoding, images.shape[1:])
            except Exception as e:  # a bad record is named, so the job's error says which
                raise BadRecord(f"{name} record {key}: {e}") from e
            labels[i] = int(np.asarray(header.label).flat[0])
    finally:
        record.close()
    return start + len(keys)


def _idx_lines(idx: str) -> int:
    with open(idx, encoding="ascii") as f:
        return sum(1 for line in f if line.strip())


def _names(shards: list[ShardFiles]) -> str:
    """The shards' files as a sentence's subject and verb: `x.rec holds`, `x-0.rec to x-3.rec hold`."""
    names = [Path(shard.rec).name for shard in shards]
    return f"{names[0]} holds" if len(names) == 1 else f"{names[0]} to {names[-1]} hold"


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
