"""Upload a packed build to the Object Store and describe it as a DatasetBuilt event."""

from __future__ import annotations

from pathlib import Path

from nats.js import JetStreamContext

from digits_datasets.packing import EncodeSpec
from digits_datasets.shards import PackResult, SplitFiles
from digits_proto import BlobRef, subjects
from digits_proto.datasets import DatasetBuilt, Shard, SplitBlobs
from digits_proto.runtime import put_file

MAX_ERRORS = 1000  # listed in the event; every split still counts all of its errors


def blob_name(dataset_id: str, filename: str) -> str:
    """A dataset blob's name in the bucket: `<dataset_id>/<file>`."""
    return f"{blob_prefix(dataset_id)}{filename}"


def blob_prefix(dataset_id: str) -> str:
    """The prefix shared by every blob of one dataset."""
    return f"{dataset_id}/"


async def _put(js: JetStreamContext, dataset_id: str, path: Path) -> BlobRef:
    return await put_file(js, subjects.BUCKET_DATASETS, blob_name(dataset_id, path.name), path)


async def upload_build(
    js: JetStreamContext, dataset_id: str, labels: list[str], spec: EncodeSpec, packed: PackResult
) -> DatasetBuilt:
    """Put every file of the build and return the event that records them."""
    splits = [await _put_split(js, dataset_id, files) for files in packed.splits]
    errors = [e for files in packed.splits for e in files.errors][:MAX_ERRORS]
    return DatasetBuilt(
        dataset_id=dataset_id,
        labels=labels,
        labels_blob=await _put(js, dataset_id, packed.labels_txt),
        splits=splits,
        mean=await _put(js, dataset_id, packed.mean_npy),
        mean_jpg=await _put(js, dataset_id, packed.mean_jpg),
        image_width=spec.width,
        image_height=spec.height,
        image_channels=spec.channels,
        encoding=spec.encoding,
        errors=errors,
    )


async def _put_split(js: JetStreamContext, dataset_id: str, files: SplitFiles) -> SplitBlobs:
    # One shard after another, each streamed from its file: memory stays a window of chunks.
    shards = [
        Shard(
            entries=shard.entries,
            rec=await _put(js, dataset_id, shard.rec),
            idx=await _put(js, dataset_id, shard.idx),
        )
        for shard in files.shards
    ]
    return SplitBlobs(
        split=files.split,
        entries=files.entries,
        rec=shards[0].rec,
        idx=shards[0].idx,
        class_counts=files.class_counts,
        error_count=files.error_count,
        class_error_counts=files.class_errors,
        shards=shards,
    )
