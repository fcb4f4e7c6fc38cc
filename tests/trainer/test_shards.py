"""A split packed as several RecordIO shards trains exactly like the same split in one pair."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from digits_datasets.shards import ShardWriter
from digits_proto import codec, new_job_id, subjects
from digits_proto.base import JobStatus
from digits_proto.datasets import DatasetBuilt, DatasetCreated, DatasetSpec, Shard, SplitBlobs
from digits_proto.runtime import EventStore, put_file
from digits_trainer.config import ShardFiles, SplitFiles
from digits_trainer.data import BadRecord, read_split
from tests.trainer.test_service import FakeBroker, create, status_is, trainer, wait_for
from tests.trainer.toy import LABELS, png_bytes, toy_images

pytestmark = pytest.mark.timeout(120)
SHAPE = (1, 28, 28)


def pack(folder: Path, split: str, limit: int, corrupt: int | None = None) -> list[ShardFiles]:
    """Toy images packed by the datasets service's shard writer; record `corrupt` not an image."""
    folder.mkdir(parents=True, exist_ok=True)
    images, labels = toy_images(40, seed=1 if split == "train" else 2)
    writer = ShardWriter(folder, split, limit)
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        writer.write(i, int(label), b"not an image" if i == corrupt else png_bytes(image))
    writer.close()
    return [ShardFiles(rec=str(s.rec), idx=str(s.idx), entries=s.entries) for s in writer.shards]


def split_files(shards: list[ShardFiles], entries: int = 0) -> SplitFiles:
    return SplitFiles(rec=shards[0].rec, idx=shards[0].idx, entries=entries, shards=shards)


def test_a_sharded_split_reads_into_the_same_arrays_as_one_pair(tmp_path: Path) -> None:
    """Shards of ~20 kB read in order give the single pair's images and labels, bit for bit."""
    single = pack(tmp_path / "one", "train", 1 << 30)
    sharded = pack(tmp_path / "many", "train", 20_000)
    assert len(single) == 1 and len(sharded) >= 4
    whole = read_split(SplitFiles(rec=single[0].rec, idx=single[0].idx), "png", SHAPE)
    for files in (split_files(sharded, 120), split_files(sharded)):  # entries known / counted
        parts = read_split(files, "png", SHAPE)
        np.testing.assert_array_equal(parts.images, whole.images)
        np.testing.assert_array_equal(parts.labels, whole.labels)
    assert len(whole) == 120


def test_a_bad_record_or_a_wrong_count_names_the_shard_file(tmp_path: Path) -> None:
    """A record that is not an image names its shard and key; a count unlike the event's fails."""
    shards = pack(tmp_path / "bad", "train", 20_000, corrupt=100)
    ends = list(itertools.accumulate(s.entries for s in shards))
    holder = shards[next(n for n, end in enumerate(ends) if end > 100)]
    with pytest.raises(BadRecord, match=rf"^{Path(holder.rec).name} record 100: not a readable"):
        read_split(split_files(shards, 120), "png", SHAPE)
    good = pack(tmp_path / "good", "train", 20_000)
    last = Path(good[-1].rec).name
    with pytest.raises(ValueError, match=r"more records than the dataset says \(119\)"):
        read_split(split_files(good, 119), "png", SHAPE)
    with pytest.raises(ValueError, match=rf"train-0.rec to {last} hold 120 records, .* says 121"):
        read_split(split_files(good, 121), "png", SHAPE)


async def test_a_job_on_a_sharded_dataset_fetches_every_shard_and_trains(
    nats_url, js, nc, tmp_path: Path
) -> None:
    """A DatasetBuilt listing several shards per split trains to Done (both splits read whole)."""
    broker = FakeBroker()
    await broker.serve(nc)
    dataset_id = new_job_id()
    splits = []
    for split in ("train", "val"):
        shards = []
        for files in pack(tmp_path / "toy", split, 20_000):
            refs = [
                await put_file(js, subjects.BUCKET_DATASETS, f"{dataset_id}/{Path(p).name}", p)
                for p in (files.rec, files.idx)
            ]
            shards.append(Shard(entries=files.entries, rec=refs[0], idx=refs[1]))
        assert len(shards) >= 4
        entries = sum(s.entries for s in shards)
        splits.append(
            SplitBlobs(
                split=split, entries=entries, rec=shards[0].rec, idx=shards[0].idx, shards=shards
            )
        )
    mean = tmp_path / "toy" / "mean.npy"
    np.save(mean, toy_images(40, seed=1)[0].astype(np.float32).mean(axis=0))
    mean_ref = await put_file(js, subjects.BUCKET_DATASETS, f"{dataset_id}/mean.npy", mean)
    built = DatasetBuilt(
        dataset_id=dataset_id,
        labels=LABELS,
        labels_blob=mean_ref,
        splits=splits,
        mean=mean_ref,
        mean_jpg=mean_ref,
        image_width=28,
        image_height=28,
        image_channels=1,
    )
    spec = DatasetSpec(folder_train="/toy", resize_width=28, resize_height=28, resize_channels=1)
    created = DatasetCreated(dataset_id=dataset_id, name="sharded toy", spec=spec)
    store = EventStore(js, subjects.STREAM_DATASETS, codec.dataset_events)
    await store.append(subjects.dataset_events(dataset_id), [created, built], 0)
    async with trainer(nats_url, tmp_path / "data"):
        reply = await create(nc, dataset_id)
        await wait_for(js, reply.id, status_is(JobStatus.DONE))
    # A job that ended keeps no local folder: its log is the copy in the models bucket.
    bucket = await js.object_store(subjects.BUCKET_MODELS)
    log = (await bucket.get(f"{reply.id}/train.log")).data.decode()
    assert "train=120" in log and "val=120" in log and "Traceback" not in log
