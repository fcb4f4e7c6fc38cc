"""Resume points between snapshots, and the decoded-dataset cache: what makes a resume cheap."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import msgspec
import numpy as np
import pytest
from nats.js.errors import NotFoundError

from digits_proto import codec, subjects
from digits_proto.models import MetricsRecorded, SnapshotSaved, TrainingCompleted, TrainingStarted
from digits_proto.runtime import EventStore
from digits_trainer import data, loop
from digits_trainer.config import ResumeFiles, SplitFiles
from digits_trainer.data import decode_split, decoded_path, load_data, load_decoded, read_split
from digits_trainer.reports import MetricsReport, ResumePointReport, SnapshotReport
from tests.trainer.test_resume import start_trainer
from tests.trainer.test_service import FakeBroker, add_dataset, children_of_job, create, wait_for
from tests.trainer.test_training import config_for, run
from tests.trainer.toy import write_dataset

pytestmark = pytest.mark.timeout(120)

SPEC = dict(train_epochs=3, snapshot_interval=1.5, val_interval=0.5, crop_size=24)


@pytest.fixture(scope="module")
def toy_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The toy dataset's files, written once for this module."""
    return write_dataset(tmp_path_factory.mktemp("toy"))


def with_points(config, folder: Path):
    """The config with a resume point at every metric point (no time minimum)."""
    return msgspec.structs.replace(config, resume_points=str(folder), resume_every=0.0)


def points_of(reports) -> list[tuple[str, float | int, dict]]:
    """The metric series as (phase, iteration, values)."""
    return [(r.phase, r.iteration, r.values) for r in reports if isinstance(r, MetricsReport)]


def test_resume_points_leave_the_metrics_of_a_run_unchanged(toy_files, tmp_path, monkeypatch):
    """Taking resume points (whenever they fall) changes no metric of a seeded run."""
    monkeypatch.setattr(loop, "RESUME_BUDGET", 1e9)  # a point at every metric point
    plain = run(config_for(toy_files, tmp_path / "a", aug_flip="fliplr", **SPEC))
    pointed = run(
        with_points(
            config_for(toy_files, tmp_path / "b", aug_flip="fliplr", **SPEC), tmp_path / "p"
        )
    )
    assert [r for r in pointed if isinstance(r, ResumePointReport)]
    assert points_of(pointed) == points_of(plain)


def test_a_run_resumed_from_a_resume_point_continues_at_its_iteration(
    toy_files, tmp_path, monkeypatch
):
    """Resumed from a point between snapshots, a run starts right after the point's iteration
    and reports exactly what the unbroken run reported from there on (train and val)."""
    monkeypatch.setattr(loop, "RESUME_BUDGET", 1e9)
    unbroken = run(
        with_points(
            config_for(toy_files, tmp_path / "a", aug_flip="fliplr", **SPEC), tmp_path / "p"
        )
    )
    points = [r for r in unbroken if isinstance(r, ResumePointReport)]
    between = [p for p in points if 1.5 < p.epoch < 3.0]  # after the 1.5 snapshot
    assert between
    point = between[0]
    resumed = run(
        msgspec.structs.replace(
            config_for(toy_files, tmp_path / "b", aug_flip="fliplr", **SPEC),
            resume=ResumeFiles(state=point.path),
        )
    )
    after = [p for p in points_of(unbroken) if p[1] > point.iteration]
    assert points_of(resumed) == after
    assert [s.epoch for s in resumed if isinstance(s, SnapshotReport)] == [3.0]


def key_config(files: dict[str, Path], tmp: Path):
    """The toy config with content keys, as the trainer writes it from the blobs' digests."""
    config = config_for(files, tmp)
    train = msgspec.structs.replace(config.train, key="train-digests")
    return msgspec.structs.replace(config, train=train, val=None)


def test_a_decoded_cache_hit_gives_the_arrays_decoding_gives(toy_files, tmp_path):
    """The first load decodes and writes the cache next to the .rec; the next one reads it
    back identical (and a split without a content key is never cached)."""
    config = key_config(toy_files, tmp_path)
    cache = decoded_path(config.train, "png", (1, 28, 28))
    assert cache is not None and cache.parent == Path(config.train.rec).parent
    cache.unlink(missing_ok=True)
    decoded = decode_split(config.train, "png", (1, 28, 28))
    first = load_data(config).train
    assert cache.exists()
    before = cache.stat().st_mtime_ns
    second = load_data(config).train
    assert cache.stat().st_mtime_ns == before  # read, not rewritten
    for split in (first, second):
        assert np.array_equal(split.images, decoded.images)
        assert np.array_equal(split.labels, decoded.labels)
    assert (
        decoded_path(SplitFiles(rec=config.train.rec, idx=config.train.idx), "png", (1, 28, 28))
        is None
    )
    other = decoded_path(config.train, "png", (3, 28, 28))
    assert other != cache  # another shape (or encoding, or content) is another file


def test_a_split_larger_than_the_cache_bound_is_not_cached(toy_files, tmp_path, monkeypatch):
    """Raw pixels past DECODED_CACHE_MAX_BYTES are decoded at each start, never copied to disk."""
    monkeypatch.setattr(data, "DECODED_CACHE_MAX_BYTES", 100)
    config = key_config(toy_files, tmp_path)
    cache = decoded_path(config.train, "png", (1, 28, 28))
    assert cache is not None
    cache.unlink(missing_ok=True)
    split = load_data(config).train
    assert not cache.exists()
    assert np.array_equal(split.images, decode_split(config.train, "png", (1, 28, 28)).images)


@pytest.mark.parametrize("damage", ["truncated", "flipped", "garbage"])
def test_a_damaged_decoded_cache_is_rebuilt_not_trusted(toy_files, tmp_path, damage):
    """A partial, bit-flipped or foreign cache file is decoded again and replaced."""
    config = key_config(toy_files, tmp_path)
    shape = (1, 28, 28)
    cache = decoded_path(config.train, "png", shape)
    assert cache is not None
    cache.unlink(missing_ok=True)
    decoded = read_split(config.train, "png", shape)
    raw = bytearray(cache.read_bytes())
    if damage == "truncated":
        cache.write_bytes(raw[: len(raw) // 2])
    elif damage == "flipped":
        raw[len(raw) // 2] ^= 0xFF  # inside the images array: only the digest sees it
        cache.write_bytes(bytes(raw))
    else:
        cache.write_bytes(b"not a cache file")
    again = read_split(config.train, "png", shape)
    assert np.array_equal(again.images, decoded.images)
    assert np.array_equal(again.labels, decoded.labels)
    rebuilt = load_decoded(cache, shape)  # the file was replaced by a valid one
    assert rebuilt is not None and np.array_equal(rebuilt.images, decoded.images)


async def resume_blob(js, model_id: str):
    """The job's resume point blob's info, None if it has none."""
    bucket = await js.object_store(subjects.BUCKET_MODELS)
    try:
        info = await bucket.get_info(f"{model_id}/resume.ckpt")
    except NotFoundError:
        return None
    return None if info.deleted else info


async def test_a_job_whose_trainer_dies_resumes_from_its_resume_point_without_repeats(
    nats_url, js, nc, tmp_path
):
    """Trainer A dies before any snapshot but after a resume point reached the Object Store;
    trainer B resumes from that point (not from the start), every train iteration is
    recorded exactly once, and the finished job's resume point is gone."""
    await FakeBroker().serve(nc)
    dataset_id, _ = await add_dataset(js, tmp_path / "toy")
    host_a, task_a = await start_trainer(nats_url, tmp_path / "a", resume_every=0.05)
    reply = await create(nc, dataset_id, train_epochs=80, snapshot_interval=80, val_interval=10)
    deadline = time.monotonic() + 60
    while await resume_blob(js, reply.id) is None:
        assert time.monotonic() < deadline, "no resume point was uploaded"
        await asyncio.sleep(0.05)
    children = children_of_job(reply.id)
    await host_a.nc.close()
    for pid in children:
        os.kill(pid, signal.SIGKILL)
    host_a.stop.set()
    await asyncio.wait_for(task_a, 15)

    host_b, task_b = await start_trainer(nats_url, tmp_path / "b", resume_every=0.05)
    try:
        events = await wait_for(
            js, reply.id, lambda ev: isinstance(ev[-1], TrainingCompleted), timeout=90
        )
    finally:
        await host_b.nc.close()
        host_b.stop.set()
        await asyncio.wait_for(task_b, 15)

    starts = [e for e in events if isinstance(e, TrainingStarted)]
    assert [s.attempt for s in starts] == [1, 2]
    before = events[: events.index(starts[1])]
    assert not any(isinstance(e, SnapshotSaved) for e in before)
    assert starts[1].resume_epoch > 0  # from the point, not from scratch
    metrics = EventStore(js, subjects.STREAM_METRICS, codec.metric_events)
    points, _ = await metrics.load(subjects.model_metrics(reply.id))
    train = [p.iteration for p in points if isinstance(p, MetricsRecorded) and p.phase == "train"]
    assert train == list(range(1, len(train) + 1))  # one point per iteration, none twice
    val = [p.iteration for p in points if isinstance(p, MetricsRecorded) and p.phase == "val"]
    assert val == sorted(set(val)) and len(val) == 8
    bucket = await js.object_store(subjects.BUCKET_MODELS)
    log = (await bucket.get(f"{reply.id}/train.log")).data.decode()
    assert f"resuming from the resume point at epoch {starts[1].resume_epoch:g}" in log
    # The point goes once the job ended (right after its completion event): wait for that.
    deadline = time.monotonic() + 30
    while await resume_blob(js, reply.id) is not None:
        assert time.monotonic() < deadline, "the completed job's resume point was kept"
        await asyncio.sleep(0.2)
