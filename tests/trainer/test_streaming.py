"""Splits past the preload budget are read from their shards batch by batch, with the same
images, labels and (seeded) metrics as preloaded ones."""

from __future__ import annotations

import os
import struct
import threading
import time
from pathlib import Path

import msgspec
import mxnet as mx
import numpy as np
import pytest

from digits_proto.recordio import MAGIC, read_label, read_record
from digits_trainer.data import BadRecord, load_data, read_split, stream_split
from digits_trainer.reports import MetricsReport
from digits_trainer.settings import Settings, preload_bytes
from digits_trainer.stream import RecordImages, prefetch
from tests.trainer.test_shards import SHAPE, pack, split_files
from tests.trainer.test_training import config_for, run
from tests.trainer.toy import write_dataset

pytestmark = pytest.mark.timeout(120)


def streamed(config):
    """The config with a preload budget of one byte: every split is streamed."""
    return msgspec.structs.replace(config, preload_bytes=1)


def test_streamed_shards_give_the_preloaded_images_in_any_order(tmp_path: Path) -> None:
    """Rows asked in a shuffled order across ~6 shards come back as the preloaded array's rows."""
    shards = pack(tmp_path / "many", "train", 20_000)
    files = split_files(shards)
    whole = read_split(files, "png", SHAPE)
    images = RecordImages(files.all_shards(), "png", SHAPE, threads=3)
    try:
        assert len(shards) >= 4 and images.shape == whole.images.shape
        np.testing.assert_array_equal(images.labels(), whole.labels)
        rows = np.random.default_rng(0).permutation(len(images))[:50]
        np.testing.assert_array_equal(images[rows], whole.images[rows])
    finally:
        images.close()


def test_a_record_written_in_parts_reads_back_whole(tmp_path: Path) -> None:
    """dmlc splits a record holding its marker at an aligned place; the parts are joined again."""
    rec, idx = str(tmp_path / "x.rec"), str(tmp_path / "x.idx")
    marker = struct.pack("<I", MAGIC)
    payloads = [b"abcd" + marker * 3 + b"tail", b"plain", marker + b"xy" + marker]
    writer = mx.recordio.MXIndexedRecordIO(idx, rec, "w")
    for key, body in enumerate(payloads):
        writer.write_idx(key, mx.recordio.pack(mx.recordio.IRHeader(0, key + 2, key, 0), body))
    writer.close()
    reader = mx.recordio.MXIndexedRecordIO(idx, rec, "r")
    fd = os.open(rec, os.O_RDONLY)
    try:
        for key, body in enumerate(payloads):
            offset = reader.idx[key]
            assert read_record(fd, offset) == reader.read_idx(key)
            assert mx.recordio.unpack(read_record(fd, offset))[1] == body
            assert read_label(fd, offset) == key + 2
    finally:
        os.close(fd)
        reader.close()


def test_a_bad_record_in_a_streamed_split_names_its_shard(tmp_path: Path) -> None:
    shards = pack(tmp_path / "bad", "train", 20_000, corrupt=100)
    images = RecordImages(split_files(shards).all_shards(), "png", SHAPE, threads=2)
    try:
        with pytest.raises(BadRecord, match=r"^train-\d+\.rec record 100: not a readable"):
            images[np.arange(90, 110)]
    finally:
        images.close()


def test_a_streamed_split_whose_count_differs_from_the_dataset_fails_naming_it(tmp_path) -> None:
    shards = pack(tmp_path / "good", "train", 20_000)
    last = Path(shards[-1].rec).name
    with pytest.raises(ValueError, match=rf"train-0.rec to {last} hold 120 records, .* says 121"):
        stream_split(split_files(shards, 121), "png", SHAPE)
    assert len(stream_split(split_files(shards, 120), "png", SHAPE)) == 120


@pytest.fixture(scope="module")
def toy_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_dataset(tmp_path_factory.mktemp("toy"))


def points_of(reports) -> list[tuple[str, float | int, dict]]:
    return [(r.phase, r.iteration, r.values) for r in reports if isinstance(r, MetricsReport)]


def test_only_splits_past_the_budget_are_streamed(toy_files, tmp_path) -> None:
    config = config_for(toy_files, tmp_path)
    assert isinstance(load_data(config).train.images, np.ndarray)  # 0 = always preload
    big = msgspec.structs.replace(config, preload_bytes=10**9)
    assert isinstance(load_data(big).train.images, np.ndarray)
    data = load_data(streamed(config))
    assert isinstance(data.train.images, RecordImages) and isinstance(data.val.images, RecordImages)


@pytest.mark.parametrize(
    "spec",
    [
        dict(crop_size=24, aug_flip="fliplr"),  # NumPy batches both ways
        dict(),  # preloaded: batches gathered by MXNet; streamed: NumPy batches
    ],
    ids=["crop-flip", "plain"],
)
def test_a_seeded_run_streamed_reports_the_preloaded_metrics(toy_files, tmp_path, spec) -> None:
    common = dict(train_epochs=2, val_interval=0.5, **spec)
    preloaded = points_of(run(config_for(toy_files, tmp_path / "a", **common)))
    streaming = points_of(run(streamed(config_for(toy_files, tmp_path / "b", **common))))
    assert [p[:2] for p in streaming] == [p[:2] for p in preloaded] and len(preloaded) >= 4
    for (_, _, got), (_, _, want) in zip(streaming, preloaded, strict=True):
        assert got.keys() == want.keys()
        for name in want:
            assert got[name] == pytest.approx(want[name], rel=1e-5), name


def test_prefetch_keeps_order_raises_errors_and_stops_when_left() -> None:
    assert list(prefetch(iter(range(20)), depth=3)) == list(range(20))

    def failing():
        yield 1
        raise ValueError("record 7 is bad")

    got = []
    with pytest.raises(ValueError, match="record 7"):
        for item in prefetch(failing()):
            got.append(item)
    assert got == [1]

    produced = []

    def endless():
        for i in range(10**6):
            produced.append(i)
            yield i

    before = threading.active_count()
    feed = prefetch(endless(), depth=2)
    assert next(feed) == 0
    feed.close()  # the consumer leaves (early stop): the producer thread ends too
    deadline = time.monotonic() + 5
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert threading.active_count() == before and len(produced) < 10


def test_the_preload_budget_is_the_setting_or_a_share_of_memory() -> None:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert preload_bytes(Settings(preload_mb=3)) == 3 * 1024 * 1024
    assert preload_bytes(Settings(concurrent_jobs=4)) == memory // 8
    assert preload_bytes(Settings(concurrent_jobs=1)) == memory // 2
