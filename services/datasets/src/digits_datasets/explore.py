"""Explore a built split (DIGITS's explore, for RecordIO): pages of records, one record's image.

Records are read straight from the packed `.rec` shards through their `.idx` (MXNet's RecordIO
framing: magic, length, then `IRHeader` + image bytes), so no MXNet import is needed to serve a
page. A record's index is its place in the whole split, across shards.
"""

from __future__ import annotations

import asyncio
import bisect
import io
from collections import OrderedDict
from pathlib import Path

import numpy as np
from nats.js import JetStreamContext
from PIL import Image

from digits_datasets import domain
from digits_datasets.errors import DatasetNotFound, InvalidField
from digits_proto import JobStatus, recordio, subjects
from digits_proto.base import is_job_id
from digits_proto.datasets import (
    DatasetBuilt,
    DatasetEvent,
    DatasetRecord,
    ExploreDataset,
    ExploredPage,
    GetDatasetRecord,
)
from digits_proto.runtime import EventStore, NotFound, fetch

PAGE_SIZES = (10, 25, 50, 100)
MAX_SHOWN = 700_000  # bytes of one image in a reply (NATS caps a message at 1 MB)
KEEP_SPLITS = 8


class SplitIndex:
    """One split's record offsets and labels, read once, over its (rec, idx) shards in order."""

    def __init__(self, shards: list[tuple[Path, Path]]):
        self.recs = [rec for rec, _ in shards]
        self.starts: list[int] = []  # the split index of each shard's first record
        self.offsets: list[int] = []
        labels: list[int] = []
        for rec, idx in shards:
            pairs = [line.split("\t") for line in idx.read_text().splitlines() if line.strip()]
            offsets = [int(off) for _, off in sorted(pairs, key=lambda p: int(p[0]))]
            self.starts.append(len(self.offsets))
            self.offsets += offsets
            with open(rec, "rb") as f:
                labels += [recordio.read_label(f.fileno(), off) for off in offsets]
        self.labels = np.array(labels, np.int64)

    def image(self, index: int) -> tuple[int, bytes]:
        """(label, image bytes) of record `index` (of the split), from the shard holding it."""
        shard = bisect.bisect_right(self.starts, index) - 1
        with open(self.recs[shard], "rb") as f:
            label, data = recordio.unpack(recordio.read_record(f.fileno(), self.offsets[index]))
        return int(label), data


class Explorer:
    """Answers explore queries; keeps the indexes of a few recently explored splits."""

    def __init__(self, js: JetStreamContext, store: EventStore[DatasetEvent], cache_dir: Path):
        self.js, self.store, self.cache_dir = js, store, cache_dir
        self._splits: OrderedDict[tuple[str, str], SplitIndex] = OrderedDict()

    async def _built(self, dataset_id: str) -> DatasetBuilt:
        if not is_job_id(dataset_id):  # the bus is a trust boundary: no wildcard in a subject
            raise DatasetNotFound(dataset_id)
        events, _ = await self.store.load(subjects.dataset_events(dataset_id))
        state = domain.fold(events)
        if not state.exists:
            raise DatasetNotFound(dataset_id)
        if state.status is not JobStatus.DONE or state.built is None:
            raise InvalidField("job_id", "The dataset is not built yet (status must be Done)")
        return state.built

    async def _split(self, built: DatasetBuilt, db: str) -> SplitIndex:
        key = (built.dataset_id, db)
        if key in self._splits:
            self._splits.move_to_end(key)
            return self._splits[key]
        blobs = next((s for s in built.splits if s.split == db), None)
        if blobs is None:
            raise InvalidField("db", f"The dataset has no {db!r} database")
        shards = [
            (
                await fetch(self.js, s.rec, self.cache_dir),
                await fetch(self.js, s.idx, self.cache_dir),
            )
            for s in blobs.all_shards()
        ]
        split = await asyncio.to_thread(SplitIndex, shards)
        self._splits[key] = split
        while len(self._splits) > KEEP_SPLITS:
            self._splits.popitem(last=False)
        return split

    async def page(self, query: ExploreDataset) -> ExploredPage:
        """The record indices (and labels) of one page."""
        if query.size not in PAGE_SIZES:
            raise InvalidField("size", f"size must be one of {', '.join(map(str, PAGE_SIZES))}")
        if query.page < 0:
            raise InvalidField("page", "page must be 0 or more")
        built = await self._built(query.dataset_id)
        if query.label is not None and not 0 <= query.label < len(built.labels):
            raise InvalidField("label", f"label must be between 0 and {len(built.labels) - 1}")
        split = await self._split(built, query.db)
        matching = (
            np.flatnonzero(split.labels == query.label)
            if query.label is not None
            else np.arange(len(split.labels))
        )
        chosen = matching[query.page * query.size : (query.page + 1) * query.size]
        return ExploredPage(
            labels=built.labels,
            total=len(matching),
            page=query.page,
            size=query.size,
            indices=[int(i) for i in chosen],
            record_labels=[int(split.labels[i]) for i in chosen],
        )

    async def record(self, query: GetDatasetRecord) -> DatasetRecord:
        """One record's image, in a format a browser shows, small enough for a reply."""
        built = await self._built(query.dataset_id)
        split = await self._split(built, query.db)
        if not 0 <= query.index < len(split.offsets):
            raise NotFound(f"No record {query.index} in {query.db}", field="index")
        label, data = await asyncio.to_thread(split.image, query.index)
        return await asyncio.to_thread(_displayable, built, label, data)


def _displayable(built: DatasetBuilt, label: int, data: bytes) -> DatasetRecord:
    if built.encoding != "none" and len(data) <= MAX_SHOWN:
        media = "image/jpeg" if built.encoding == "jpg" else "image/png"
        return DatasetRecord(image=data, media_type=media, label=label)
    if built.encoding == "none":
        shape = (built.image_height, built.image_width, built.image_channels)
        pixels = np.frombuffer(data, np.uint8).reshape(shape)
        image = Image.fromarray(pixels[:, :, 0] if built.image_channels == 1 else pixels)
    else:
        image = Image.open(io.BytesIO(data))
    buf = io.BytesIO()
    image.save(buf, "PNG")
    if buf.tell() > MAX_SHOWN:
        image.thumbnail((1024, 1024))
        buf = io.BytesIO()
        image.convert("RGB").save(buf, "JPEG", quality=85)
        return DatasetRecord(image=buf.getvalue(), media_type="image/jpeg", label=label)
    return DatasetRecord(image=buf.getvalue(), media_type="image/png", label=label)
