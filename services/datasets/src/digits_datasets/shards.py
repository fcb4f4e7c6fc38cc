"""Pack a split plan into RecordIO shards, the mean image and labels.txt, chunk by chunk.

The CPU work runs in an executor (worker processes); this side only writes records, in order,
and checks between chunks whether the build must stop. A split is one `<split>.rec`/`.idx`
pair until it reaches the shard size; then it is `<split>-0.rec`, `<split>-1.rec`, ... with the
split's global record indices as keys and header ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from digits_datasets.errors import BuildError, BuildStopped
from digits_datasets.faults import naming
from digits_datasets.packing import ChunkResult, EncodeSpec, process_chunk
from digits_datasets.splits import SPLITS, SplitPlan
from digits_proto import recordio
from digits_proto.datasets import ImageError

Progress = Callable[[str, int, int], Awaitable[None]]
KEPT_ERRORS = 1000  # failed files listed per split (all are counted); the event lists 1000
SHARD_BYTES = 512 * 1024**2  # the datasets service's default (Settings.shard_mb)
# Shards of one dataset: DatasetBuilt lists each (~340 bytes) and NATS caps a message at 1 MB.
MAX_SHARDS = 1000


@dataclass
class ShardFiles:
    """One `.rec`/`.idx` pair of a split on local disk, and how many records it holds."""

    rec: Path
    idx: Path
    entries: int = 0


@dataclass
class SplitFiles:
    """One packed split on local disk: its shards in record order."""

    split: str
    entries: int
    shards: list[ShardFiles]
    class_counts: list[int]
    errors: list[ImageError] = field(default_factory=list)  # the first KEPT_ERRORS only
    error_count: int = 0
    class_errors: list[int] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)


@dataclass
class PackResult:
    """Every file a build produced, ready for upload."""

    splits: list[SplitFiles]
    labels_txt: Path
    mean_npy: Path
    mean_jpg: Path


@dataclass
class Packer:
    """Runs `process_chunk` on `executor`, at most `inflight` chunks at a time."""

    executor: Executor
    spec: EncodeSpec
    chunk_size: int = 32
    inflight: int = 4
    shard_bytes: int = SHARD_BYTES
    skipped: int = field(default=0, init=False)  # files that could not be packed, so far

    async def pack(
        self,
        plan: SplitPlan,
        workdir: Path,
        should_stop: Callable[[], bool],
        on_progress: Progress,
    ) -> PackResult:
        """Pack every non-empty split; raises BuildStopped as soon as `should_stop()` says so."""
        workdir.mkdir(parents=True, exist_ok=True)
        total = sum(plan.counts().values())
        done = 0
        splits: list[SplitFiles] = []
        mean_sum: np.ndarray | None = None
        for split in SPLITS:
            items = plan.splits.get(split, [])
            if not items:
                continue

            async def progress(n: int, split: str = split) -> None:
                nonlocal done
                done += n
                await on_progress(split, done, total)

            left = MAX_SHARDS - sum(len(s.shards) for s in splits)
            files, pixel_sum = await self._pack_split(
                split, items, plan.labels, workdir, should_stop, progress, left
            )
            splits.append(files)
            if split == "train":
                mean_sum = pixel_sum
        train = next((s for s in splits if s.split == "train"), None)
        if train is None or train.entries == 0 or mean_sum is None:
            raise BuildError("No training image could be loaded")
        labels_txt = workdir / "labels.txt"
        with naming(labels_txt):
            labels_txt.write_text("".join(f"{label}\n" for label in plan.labels), encoding="utf-8")
        mean_npy, mean_jpg = await asyncio.to_thread(save_mean, mean_sum / train.entries, workdir)
        return PackResult(
            splits=splits, labels_txt=labels_txt, mean_npy=mean_npy, mean_jpg=mean_jpg
        )

    async def _pack_split(
        self,
        split: str,
        items: list[tuple[str, int]],
        labels: list[str],
        workdir: Path,
        should_stop: Callable[[], bool],
        progress: Callable[[int], Awaitable[None]],
        max_shards: int,
    ) -> tuple[SplitFiles, np.ndarray | None]:
        loop = asyncio.get_running_loop()
        writer = await asyncio.to_thread(ShardWriter, workdir, split, self.shard_bytes, max_shards)
        files = SplitFiles(
            split=split,
            entries=0,
            shards=writer.shards,
            class_counts=[0] * len(labels),
            class_errors=[0] * len(labels),
            labels=labels,
        )
        pixel_sum: np.ndarray | None = None
        # Small splits get smaller chunks, so that every worker has work until the end
        # (200 camera photos in chunks of 32 leave one worker idle for the last chunk).
        size = max(1, min(self.chunk_size, -(-len(items) // (4 * self.inflight))))
        chunks = deque(items[i : i + size] for i in range(0, len(items), size))
        pending: deque[asyncio.Future[ChunkResult]] = deque()
        seed = SPLITS.index(split) * 1_000_003
        try:
            while chunks or pending:
                while chunks and len(pending) < self.inflight:
                    work = functools.partial(
                        process_chunk, chunks.popleft(), self.spec, split == "train", seed
                    )
                    seed += 1
                    pending.append(loop.run_in_executor(self.executor, work))
                result = await pending.popleft()
                if should_stop():
                    raise BuildStopped(split)
                await asyncio.to_thread(_write, writer, files, result)
                self.skipped += len(result.errors)
                if result.pixel_sum is not None:
                    pixel_sum = (
                        result.pixel_sum if pixel_sum is None else pixel_sum + result.pixel_sum
                    )
                await progress(len(result.records) + len(result.errors))
        except BaseException:
            for future in pending:
                future.cancel()
            # A full disk fails the close's flush too: the first error is the one to report.
            with contextlib.suppress(OSError):
                writer.close()
            raise
        writer.close()
        return files, pixel_sum


class ShardWriter:
    """Writes one split's records in order, starting a new shard once one reaches `limit` bytes.

    Only the open shard's files are open; a shard may pass `limit` by its last record. Needing
    more than `max_shards` fails the build (the event could not list them).
    """

    def __init__(self, workdir: Path, split: str, limit: int, max_shards: int = MAX_SHARDS):
        self.workdir, self.split, self.limit = workdir, split, max(1, limit)
        self.max_shards = max_shards
        self.shards: list[ShardFiles] = []
        self.writer = self._open(split)

    def _open(self, stem: str) -> recordio.Writer:
        shard = ShardFiles(rec=self.workdir / f"{stem}.rec", idx=self.workdir / f"{stem}.idx")
        self.shards.append(shard)
        return recordio.open_writer(shard.idx, shard.rec)

    def write(self, index: int, label: int, data: bytes) -> None:
        """Append record `index` (its global index in the split) to the open shard."""
        if self.writer.pos >= self.limit:  # never true for an empty shard (limit >= 1)
            if len(self.shards) >= self.max_shards:
                raise BuildError(
                    f"The dataset needs more than {MAX_SHARDS} RecordIO shards of "
                    f"{self.limit / 1024**2:g} MB: raise the shard size (shard_mb)"
                )
            self.writer.close()
            if len(self.shards) == 1:  # a second shard: the first becomes `<split>-0`
                first = self.shards[0]
                renamed = self.workdir / f"{self.split}-0"
                first.rec = first.rec.rename(renamed.with_suffix(".rec"))
                first.idx = first.idx.rename(renamed.with_suffix(".idx"))
            self.writer = self._open(f"{self.split}-{len(self.shards)}")
        with naming(self.shards[-1].rec):
            recordio.write(self.writer, index, label, data)
        self.shards[-1].entries += 1

    def close(self) -> None:
        """Flush and close the open shard."""
        with naming(self.shards[-1].rec):
            self.writer.close()


def _write(writer: ShardWriter, files: SplitFiles, result: ChunkResult) -> None:
    for label, data in result.records:
        writer.write(files.entries, label, data)
        files.entries += 1
        files.class_counts[label] += 1
    for path, label, reason in result.errors:
        files.class_errors[label] += 1
        files.error_count += 1
        if len(files.errors) < KEPT_ERRORS:  # a folder of 100,000 bad files must not fill RAM
            files.errors.append(
                ImageError(path=path, reason=reason, split=files.split, label=files.labels[label])
            )


def save_mean(mean: np.ndarray, workdir: Path) -> tuple[Path, Path]:
    """Write the exact mean (float32 C×H×W, 0–255) as mean.npy, and a viewable mean.jpg."""
    mean32 = mean.astype(np.float32)
    npy, jpg = workdir / "mean.npy", workdir / "mean.jpg"
    with naming(npy), open(npy, "wb") as f:
        np.save(f, mean32)
    pixels = np.clip(np.rint(mean32), 0, 255).astype(np.uint8)
    image = (
        Image.fromarray(pixels[0])
        if pixels.shape[0] == 1
        else Image.fromarray(pixels.transpose(1, 2, 0))
    )
    with naming(jpg):
        image.save(jpg, "JPEG", quality=90)
    return npy, jpg
