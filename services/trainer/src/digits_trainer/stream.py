"""Splits too large to preload: their images are read from the RecordIO shards as batches ask.

Only the labels (4 bytes a record) and each record's place live in memory. A batch's records
are read with `pread` and decoded in a pool of threads (Pillow and the copy release the GIL),
and `prefetch` builds the next batches while the network trains on this one.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import numpy as np

from digits_proto.recordio import read_index, read_label, read_record, record_image
from digits_trainer.config import ShardFiles
from digits_trainer.records import BadRecord, decode_image

T = TypeVar("T")


class RecordImages:
    """A split's images on disk, indexed like the preloaded N×C×H×W uint8 array: `images[rows]`
    reads and decodes those records, in record order of the shards (global index = row)."""

    def __init__(
        self,
        shards: list[ShardFiles],
        encoding: str,
        shape: tuple[int, int, int],
        threads: int,
    ) -> None:
        self.encoding, self.image_shape = encoding, shape
        self._fds: list[int] = []
        self._names = [Path(s.rec).name for s in shards]
        shard_of, offsets, spans, keys = [], [], [], []  # of each record, in order
        try:
            for number, shard in enumerate(shards):
                fd = os.open(shard.rec, os.O_RDONLY)
                self._fds.append(fd)
                index = read_index(shard.idx)
                keys.append(np.array([key for key, _ in index], dtype=np.int64))
                offsets.append(np.array([offset for _, offset in index], dtype=np.int64))
                spans.append(record_spans(offsets[-1], os.fstat(fd).st_size))
                shard_of.append(np.full(len(index), number, dtype=np.int32))
        except BaseException:
            self.close()
            raise
        self._shard, self._key = np.concatenate(shard_of or [[]]), np.concatenate(keys or [[]])
        self._offset, self._span = np.concatenate(offsets or [[]]), np.concatenate(spans or [[]])
        self._threads = max(1, threads)
        self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="decode")

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self._offset), *self.image_shape)

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape))

    def __len__(self) -> int:
        return len(self._offset)

    def labels(self) -> np.ndarray:
        """Every record's label (int32), read from the records' headers only."""
        return np.fromiter(
            (self._label(row) for row in range(len(self))), dtype=np.int32, count=len(self)
        )

    def __getitem__(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows)
        if rows.ndim != 1 or not np.issubdtype(rows.dtype, np.integer):
            raise TypeError("RecordImages are indexed by a 1-d array of rows")
        out = np.empty((len(rows), *self.image_shape), dtype=np.uint8)

        def fill(part: np.ndarray) -> None:  # a slice per thread: one task each, not one a row
            for i in part:
                out[i] = self._image(int(rows[i]))

        parts = np.array_split(np.arange(len(rows)), min(self._threads, max(1, len(rows))))
        for _ in self._pool.map(fill, parts):
            pass  # map re-raises a decoding error here
        return out

    def close(self) -> None:
        for fd in self._fds:
            os.close(fd)
        self._fds = []
        if hasattr(self, "_pool"):
            self._pool.shutdown(wait=False)

    def _image(self, row: int) -> np.ndarray:
        shard, key = int(self._shard[row]), int(self._key[row])
        try:
            record = read_record(self._fds[shard], int(self._offset[row]), int(self._span[row]))
            return decode_image(record_image(record), self.encoding, self.image_shape)
        except Exception as e:  # named like the preloading path's errors
            raise BadRecord(f"{self._names[shard]} record {key}: {e}") from e

    def _label(self, row: int) -> int:
        shard = int(self._shard[row])
        try:
            return read_label(self._fds[shard], int(self._offset[row]))
        except ValueError as e:
            raise BadRecord(f"{self._names[shard]} record {int(self._key[row])}: {e}") from e


# Below this many pixels an image's decode is shorter than the Python around it, which holds
# the GIL: more threads only contend (28×28 PNG: 69 µs an image with 1 thread, 112 with 2).
THREADED_PIXELS = 96 * 96


def decode_threads(shape: tuple[int, int, int]) -> int:
    """Threads to decode a batch of images of this shape: one per usable core for large ones."""
    return len(os.sched_getaffinity(0)) if shape[1] * shape[2] >= THREADED_PIXELS else 1


def record_spans(offsets: np.ndarray, file_size: int) -> np.ndarray:
    """Bytes from each record's offset to the next record's (or the file's end): each record,
    all its parts included, is then read in one call."""
    if not len(offsets):
        return np.zeros(0, dtype=np.int64)
    by_place = np.argsort(offsets, kind="stable")
    ends = np.empty_like(offsets)
    ends[by_place[:-1]] = offsets[by_place[1:]]
    ends[by_place[-1]] = file_size
    return ends - offsets


def read_ahead(images: object, items: Iterator[T]) -> Iterator[T]:
    """Batches of a streamed split are read and decoded in a thread while the network trains on
    the one before; a preloaded split's are cheap slices, made where they are used."""
    return prefetch(items) if isinstance(images, RecordImages) else items


def prefetch(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """`items`, produced up to `depth` ahead in a thread of their own (the consumer's work and
    the producer's reading and decoding overlap). The producer's errors are raised here."""
    ready: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def hand(value: tuple) -> bool:
        """Put `value` once there is room; False when the consumer has gone."""
        while not stop.is_set():
            try:
                ready.put(value, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not hand((item, None)):
                    return
        except Exception as e:  # noqa: BLE001 - raised again in the consumer's thread
            hand((done, e))
            return
        hand((done, None))

    threading.Thread(target=produce, name="prefetch", daemon=True).start()
    try:
        while True:
            item, error = ready.get()
            if item is done:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()  # the consumer stopped early (early stop, error): let the producer end
