"""Sharded splits: past `shard_mb` a split is several .rec/.idx pairs, read back as one split."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import msgspec
import mxnet as mx
import numpy as np
import pytest

from digits_datasets import shards
from digits_datasets.errors import BuildError
from digits_datasets.packing import EncodeSpec
from digits_datasets.settings import Settings
from digits_datasets.shards import Packer, ShardWriter
from digits_proto import codec, new_job_id, subjects
from digits_proto.datasets import (
    DatasetBuilt,
    DatasetCreated,
    DatasetSpec,
    ExploreDataset,
    GetDatasetRecord,
    SplitBlobs,
)
from digits_proto.runtime import EventStore, env_settings, fetch, request
from tests.fakes.principals import ALICE

from .conftest import make_folder, running
from .test_pack_window import noop, plan_of
from .test_service import blob_names, create, wait_terminal

SHARD_MB = 2000 / 1024**2  # a few 16×16 noisy PNG records (~600 bytes each) per shard
SHARDED = pytest.mark.parametrize("overrides", [{"shard_mb": SHARD_MB}])


async def split_records(js, split: SplitBlobs, cache: Path) -> list[tuple[int, int, bytes]]:
    """(key, label, image bytes) of every record of a split, shard after shard."""
    out = []
    for shard in split.all_shards():
        rec, idx = await fetch(js, shard.rec, cache), await fetch(js, shard.idx, cache)
        reader = mx.recordio.MXIndexedRecordIO(str(idx), str(rec), "r")
        keys = sorted(reader.keys)
        assert len(keys) == shard.entries
        for key in keys:
            header, data = mx.recordio.unpack(reader.read_idx(key))
            assert header.id == key  # the header id is the split-wide index too
            out.append((key, int(header.label), data))
        reader.close()
    return out


async def build(nc, js, folder: Path) -> DatasetBuilt:
    accepted, rejected = await create(nc, folder, folder_pct_val=25)
    assert rejected is None and accepted is not None
    built = (await wait_terminal(js, accepted.id))[-1]
    assert isinstance(built, DatasetBuilt), built
    return built


@SHARDED
async def test_a_split_past_the_shard_size_is_several_shards_listed_in_order(
    service: Settings, nc, js, images: Path, tmp_path: Path
) -> None:
    """Every split is cut in shards of ≥ shard_mb; entries sum to the split; keys run on."""
    built = await build(nc, js, make_folder(images / "big", {"a_cat": 12, "b": 12, "c": 12}))
    names = set(await blob_names(js))
    for split in built.splits:
        shards = split.shards
        assert len(shards) >= (4 if split.split == "train" else 2), split.split
        assert sum(s.entries for s in shards) == split.entries
        assert (split.rec, split.idx) == (shards[0].rec, shards[0].idx)
        stem = f"{built.dataset_id}/{split.split}"
        assert [s.rec.name for s in shards] == [f"{stem}-{n}.rec" for n in range(len(shards))]
        assert [s.idx.name for s in shards] == [f"{stem}-{n}.idx" for n in range(len(shards))]
        assert all(s.rec.size >= SHARD_MB * 1024**2 for s in shards[:-1])
        assert {s.rec.name for s in shards} | {s.idx.name for s in shards} <= names
        records = await split_records(js, split, tmp_path / "c")
        assert [key for key, _, _ in records] == list(range(split.entries))
        labels = [label for _, label, _ in records]
        assert np.bincount(labels, minlength=3).tolist() == split.class_counts


@SHARDED
async def test_explore_pages_and_records_cross_shard_boundaries(
    service: Settings, nc, js, images: Path, tmp_path: Path
) -> None:
    """Pages of 10 over shards of a few records list the split's records; each image matches."""
    built = await build(nc, js, make_folder(images / "ex", {"a_cat": 10, "b": 8, "c": 9}))
    train = next(s for s in built.splits if s.split == "train")
    assert len(train.shards) >= 4
    records = await split_records(js, train, tmp_path / "c")
    seen: list[tuple[int, int]] = []
    for page in range(3):
        query = ExploreDataset(dataset_id=built.dataset_id, page=page, size=10, principal=ALICE)
        body, rejected = await request(nc, subjects.CMD_DATASETS_EXPLORE, query)
        assert rejected is None, rejected
        reply = codec.explore_reply.decode(body)
        assert reply.total == train.entries
        seen += list(zip(reply.indices, reply.record_labels, strict=True))
    assert seen == [(key, label) for key, label, _ in records]

    query = ExploreDataset(dataset_id=built.dataset_id, page=0, size=25, label=2, principal=ALICE)
    body, _ = await request(nc, subjects.CMD_DATASETS_EXPLORE, query)
    only_c = codec.explore_reply.decode(body)
    assert only_c.indices == [key for key, label, _ in records if label == 2]

    for key, label, data in records:
        query = GetDatasetRecord(
            dataset_id=built.dataset_id, db="train", index=key, principal=ALICE
        )
        body, rejected = await request(nc, subjects.CMD_DATASETS_RECORD, query)
        assert rejected is None, rejected
        record = codec.record_reply.decode(body)
        assert (record.label, record.image) == (label, data)
    query = GetDatasetRecord(
        dataset_id=built.dataset_id, db="train", index=train.entries, principal=ALICE
    )
    _, rejected = await request(nc, subjects.CMD_DATASETS_RECORD, query)
    assert rejected is not None and rejected.code == 404


async def test_a_sharded_build_holds_the_same_records_and_mean_as_a_single_shard_one(
    settings: Settings, nc, js, images: Path, tmp_path: Path
) -> None:
    """The same folder built with a tiny and the default shard size: same records, same mean."""
    folder = make_folder(images / "same", {"a_cat": 9, "b": 9})
    builds = []
    for shard_mb in (SHARD_MB / 2, settings.shard_mb):
        async with running(msgspec.structs.replace(settings, shard_mb=shard_mb)):
            builds.append(await build(nc, js, folder))
    sharded, single = builds
    for a, b in zip(sharded.splits, single.splits, strict=True):
        assert len(a.shards) > 1 and len(b.shards) == 1
        assert b.shards[0].rec.name == f"{single.dataset_id}/{b.split}.rec"
        assert (a.entries, a.class_counts) == (b.entries, b.class_counts)
        assert await split_records(js, a, tmp_path / "a") == await split_records(
            js, b, tmp_path / "b"
        )
    means = [np.load(await fetch(js, d.mean, tmp_path / "m")) for d in builds]
    np.testing.assert_array_equal(means[0], means[1])


async def test_an_event_written_before_sharding_still_explores(
    service: Settings, nc, js, images: Path, tmp_path: Path
) -> None:
    """A DatasetBuilt without `shards` (an older service's) explores through its rec/idx pair."""
    built = await build(nc, js, make_folder(images / "old", {"a_cat": 4, "b": 4}))
    train = next(s for s in built.splits if s.split == "train")
    assert len(train.shards) == 1 and train.shards[0].rec.name.endswith("/train.rec")
    raw = msgspec.json.decode(codec.encode(built))
    for split in raw["splits"]:
        del split["shards"]  # as an older service wrote it
    raw.pop("event_id")  # a new event (JetStream drops a repeated Nats-Msg-Id)
    old = codec.dataset_events.decode(msgspec.json.encode({**raw, "dataset_id": new_job_id()}))
    assert isinstance(old, DatasetBuilt) and old.splits[0].shards == []
    assert old.splits[0].all_shards() == train.shards
    store = EventStore(js, subjects.STREAM_DATASETS, codec.dataset_events)
    created = DatasetCreated(dataset_id=old.dataset_id, name="old", spec=DatasetSpec())
    await store.append(subjects.dataset_events(old.dataset_id), [created, old], 0)

    records = await split_records(js, train, tmp_path / "c")
    query = ExploreDataset(dataset_id=old.dataset_id, page=0, size=10, principal=ALICE)
    body, rejected = await request(nc, subjects.CMD_DATASETS_EXPLORE, query)
    assert rejected is None, rejected
    assert codec.explore_reply.decode(body).indices == [key for key, _, _ in records]
    query = GetDatasetRecord(
        dataset_id=old.dataset_id, db="train", index=len(records) - 1, principal=ALICE
    )
    body, rejected = await request(nc, subjects.CMD_DATASETS_RECORD, query)
    assert rejected is None and codec.record_reply.decode(body).image == records[-1][2]


def test_the_shard_writer_cuts_after_the_record_that_reaches_the_limit(tmp_path: Path) -> None:
    """Shards close once they reach the limit; keys run on; one shard keeps the plain name."""
    writer = ShardWriter(tmp_path, "val", limit=100)
    for i in range(9):
        writer.write(i, i % 2, bytes(40))  # 24-byte header + 40 bytes + 8-byte frame = 72 bytes
    writer.close()
    assert [s.entries for s in writer.shards] == [2, 2, 2, 2, 1]
    assert [s.rec.name for s in writer.shards] == [f"val-{n}.rec" for n in range(5)]
    assert [s.rec.stat().st_size for s in writer.shards] == [144] * 4 + [72]
    keys = [int(k) for s in writer.shards for k in s.idx.read_text().split()[::2]]
    assert keys == list(range(9))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"val-{n}.{ext}" for n in range(5) for ext in ("rec", "idx")
    )

    (tmp_path / "one").mkdir()
    single = ShardWriter(tmp_path / "one", "train", limit=10_000)
    for i in range(9):
        single.write(i, 0, bytes(40))
    single.close()
    assert [(s.rec.name, s.idx.name, s.entries) for s in single.shards] == [
        ("train.rec", "train.idx", 9)
    ]


async def test_a_build_needing_more_shards_than_an_event_can_list_fails_saying_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past MAX_SHARDS (the event must fit a NATS message) the build stops with a clear error."""
    monkeypatch.setattr(shards, "MAX_SHARDS", 3)
    plan = plan_of(tmp_path, 40, 0)
    with ThreadPoolExecutor(2) as executor:
        spec = EncodeSpec(width=4, height=4, channels=3)
        packer = Packer(executor, spec, 4, inflight=2, shard_bytes=300)
        with pytest.raises(
            BuildError, match=r"more than 3 RecordIO shards .* raise the shard size"
        ):
            await packer.pack(plan, tmp_path / "out", lambda: False, noop)


def test_the_shard_size_comes_from_digits_datasets_shard_mb() -> None:
    """DIGITS_DATASETS_SHARD_MB sets the shard size in MiB (fractions allowed); 512 by default."""
    assert env_settings(Settings, "datasets", env={}).shard_mb == 512
    changed = env_settings(Settings, "datasets", env={"DIGITS_DATASETS_SHARD_MB": "0.25"})
    assert changed.shard_mb == 0.25
