"""The datasets service against a real nats-server: create, build, read back, abort, delete."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import mxnet as mx
import numpy as np
import pytest
from PIL import Image

from digits_datasets.settings import Settings
from digits_proto import JobStatus, codec, subjects
from digits_proto.datasets import (
    AbortDataset,
    CreateDataset,
    DatasetAborted,
    DatasetBuilt,
    DatasetDeleted,
    DatasetEvent,
    DatasetFailed,
    DatasetFolderParsed,
    DatasetProgressed,
    DatasetSpec,
    DeleteDataset,
)
from digits_proto.models import ModelCreated, ModelDeleted, TrainSpec
from digits_proto.replies import Accepted, Rejected
from digits_proto.runtime import EventStore, fetch, request
from tests.fakes.principals import ALICE

from .conftest import make_folder, wait_for

TERMINAL = (DatasetBuilt, DatasetFailed, DatasetAborted)


async def create(nc, folder: Path | str, **spec) -> tuple[Accepted | None, Rejected | None]:
    """Send CreateDataset; returns (accepted, rejected)."""
    spec.setdefault("resize_width", 16)
    spec.setdefault("resize_height", 16)
    spec = DatasetSpec(folder_train=str(folder), **spec)
    command = CreateDataset(name="ds", spec=spec, principal=ALICE)
    body, rejected = await request(nc, subjects.CMD_DATASETS_CREATE, command)
    return (None, rejected) if rejected else (codec.command_reply.decode(body), None)


async def history(js, dataset_id: str) -> list[DatasetEvent]:
    """Every event of one dataset."""
    store = EventStore(js, subjects.STREAM_DATASETS, codec.dataset_events)
    events, _ = await store.load(subjects.dataset_events(dataset_id))
    return events


async def wait_terminal(js, dataset_id: str, timeout: float = 60) -> list[DatasetEvent]:
    """Events of a dataset once it reached Built, Failed or Aborted."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        events = await history(js, dataset_id)
        if any(isinstance(e, TERMINAL) for e in events):
            return events
        assert loop.time() < deadline, f"no terminal event: {[type(e).__name__ for e in events]}"
        await asyncio.sleep(0.05)


async def blob_names(js) -> list[str]:
    """Names of the live objects in the datasets bucket."""
    store = await js.object_store(subjects.BUCKET_DATASETS)
    try:
        return sorted(i.name for i in await store.list() if not i.deleted)
    except Exception:  # noqa: BLE001 - nats-py raises NotFoundError for an empty bucket
        return []


def read_records(rec: Path, idx: Path) -> list[tuple[int, bytes]]:
    """(label, image bytes) of every record of an indexed RecordIO pair."""
    reader = mx.recordio.MXIndexedRecordIO(str(idx), str(rec), "r")
    out = []
    for key in sorted(reader.keys):
        header, data = mx.recordio.unpack(reader.read_idx(key))
        out.append((int(header.label), data))
    reader.close()
    return out


async def test_folder_build_packs_splits_labels_and_exact_mean(
    service: Settings, nc, js, images: Path, tmp_path: Path
) -> None:
    """3 classes × 12 images (plus one corrupt file) build to train/val RecordIO, mean and labels."""
    folder = make_folder(images / "shapes", {"a_cat": 12, "b": 12, "c": 12})
    (folder / "b" / "broken.jpg").write_text("this is not a jpeg")
    accepted, rejected = await create(nc, folder, folder_pct_val=25)
    assert rejected is None and accepted is not None
    assert accepted.status is JobStatus.INITIALIZED and accepted.stream == subjects.STREAM_DATASETS

    events = await wait_terminal(js, accepted.id)
    built = events[-1]
    assert isinstance(built, DatasetBuilt), events[-1]
    parsed = next(e for e in events if isinstance(e, DatasetFolderParsed))
    assert parsed.labels == built.labels == ["a_cat", "b", "c"]
    assert parsed.split_counts == {"train": 9 + 10 + 9, "val": 3 + 3 + 3, "test": 0}  # b: 13 files
    assert not any(isinstance(e, DatasetProgressed) for e in events)  # on its own subject:
    progress = await js.get_last_msg(
        subjects.STREAM_PROGRESS, subjects.dataset_progress(accepted.id)
    )
    assert isinstance(codec.progress_events.decode(progress.data), DatasetProgressed)
    assert [e.path.endswith("broken.jpg") for e in built.errors] == [True]
    splits = {s.split: s for s in built.splits}
    assert splits["train"].entries + splits["val"].entries == 36
    assert sum(s.error_count for s in built.splits) == 1
    assert (built.image_width, built.image_height, built.image_channels) == (16, 16, 3)

    train = splits["train"]
    rec = await fetch(js, train.rec, tmp_path / "cache")
    idx = await fetch(js, train.idx, tmp_path / "cache")
    records = read_records(rec, idx)
    assert len(records) == train.entries
    assert np.bincount([label for label, _ in records]).tolist() == train.class_counts
    pixels = np.stack([np.asarray(Image.open(io.BytesIO(data))) for _, data in records])
    assert pixels.shape == (train.entries, 16, 16, 3)
    first_label, first = records[0]
    dominant = int(np.argmax(np.asarray(Image.open(io.BytesIO(first))).mean(axis=(0, 1))))
    assert dominant == first_label  # class colours: red, green, blue

    mean = np.load(await fetch(js, built.mean, tmp_path / "cache"))
    assert mean.dtype == np.float32 and mean.shape == (3, 16, 16)
    np.testing.assert_allclose(mean, pixels.mean(axis=0).transpose(2, 0, 1), atol=1e-3)
    labels_txt = await fetch(js, built.labels_blob, tmp_path / "cache")
    assert labels_txt.read_text() == "a_cat\nb\nc\n"
    assert Image.open(await fetch(js, built.mean_jpg, tmp_path / "cache")).size == (16, 16)
    assert not (Path(service.jobs_dir()) / accepted.id).exists()  # work files removed


async def test_grayscale_raw_build_stores_plain_pixels(
    service: Settings, nc, js, images: Path, tmp_path: Path
) -> None:
    """Encoding 'none' with one channel stores H×W uint8 bytes; val/test splits get their share."""
    folder = make_folder(images / "gray", {"a_cat": 6, "b": 6})
    accepted, _ = await create(
        nc,
        folder,
        resize_channels=1,
        resize_width=12,
        resize_height=10,
        encoding="none",
        resize_mode="fill",
        folder_pct_val=20,
        folder_pct_test=20,
    )
    assert accepted is not None
    built = (await wait_terminal(js, accepted.id))[-1]
    assert isinstance(built, DatasetBuilt), built
    assert {s.split: s.entries for s in built.splits} == {"train": 8, "val": 2, "test": 2}
    test = next(s for s in built.splits if s.split == "test")
    records = read_records(
        await fetch(js, test.rec, tmp_path / "c"), await fetch(js, test.idx, tmp_path / "c")
    )
    assert sorted(label for label, _ in records) == [0, 1]
    assert all(len(data) == 12 * 10 for _, data in records)
    assert np.load(await fetch(js, built.mean, tmp_path / "c")).shape == (1, 10, 12)


async def test_invalid_creates_are_rejected_with_400_naming_the_field(
    service: Settings, nc, js, images: Path, tmp_path: Path
) -> None:
    """Outside the roots, missing, one class, bad percentages or method: 400 and the field."""
    good = make_folder(images / "good", {"a_cat": 3, "b": 3})
    one = make_folder(images / "one", {"a_cat": 3})
    outside = make_folder(tmp_path / "elsewhere", {"a_cat": 3, "b": 3})
    cases = [
        (outside, {}, "folder_train", "outside"),
        (images / "missing", {}, "folder_train", "does not exist"),
        (one, {}, "folder_train", "at least two subdirectories"),
        (good, {"folder_pct_val": 60, "folder_pct_test": 50}, "folder_pct_val", "exceed"),
        (good, {"method": "s3"}, "method", "must be one of"),
        (good, {"resize_width": 0}, "resize_width", "between"),
    ]
    for folder, spec, field, words in cases:
        accepted, rejected = await create(nc, folder, **spec)
        assert accepted is None and rejected is not None, (folder, spec)
        assert (rejected.code, rejected.field) == (400, field), rejected
        assert words in rejected.message
    info = await js.stream_info(subjects.STREAM_DATASETS)
    assert info.state.messages == 0  # nothing was recorded


async def test_folder_without_two_valid_classes_fails_the_build(
    service: Settings, nc, js, images: Path
) -> None:
    """Two class folders but one image each: the build ends in DatasetFailed with DIGITS's words."""
    folder = make_folder(images / "tiny", {"a_cat": 1, "b": 1})
    accepted, _ = await create(nc, folder)
    assert accepted is not None
    failed = (await wait_terminal(js, accepted.id))[-1]
    assert isinstance(failed, DatasetFailed)
    assert failed.error == "Did not find two valid categories"
    assert await blob_names(js) == []


@pytest.mark.parametrize("overrides", [{"chunk_size": 1}])
async def test_abort_stops_a_running_build_and_leaves_no_blobs(
    service: Settings, nc, js, images: Path
) -> None:
    """Abort sent on the first progress event stops the build: Aborted last, no blobs, no files."""
    folder = make_folder(images / "abort", {"a_cat": 30, "b": 30, "c": 30})
    progressed = asyncio.Event()

    async def on_event(msg) -> None:
        if isinstance(codec.progress_events.decode(msg.data), DatasetProgressed):
            progressed.set()

    sub = await nc.subscribe(subjects.PROGRESS_EVENTS, cb=on_event)
    accepted, _ = await create(nc, folder)
    assert accepted is not None
    await asyncio.wait_for(progressed.wait(), 30)
    abort = AbortDataset(dataset_id=accepted.id, principal=ALICE)
    body, rejected = await request(nc, subjects.CMD_DATASETS_ABORT, abort)
    assert rejected is None
    assert codec.command_reply.decode(body).status is JobStatus.ABORTED
    await sub.unsubscribe()

    jobdir = Path(service.jobs_dir()) / accepted.id
    await wait_for(lambda: not jobdir.exists(), timeout=10)  # the worker stopped and cleaned up
    events = await history(js, accepted.id)
    assert isinstance(events[-1], DatasetAborted)
    assert not any(isinstance(e, DatasetBuilt) for e in events)
    assert await blob_names(js) == []
    _, rejected = await request(nc, subjects.CMD_DATASETS_ABORT, abort)
    assert rejected is not None and rejected.code == 403
    assert rejected.message == "Job not aborted: it is not running"


async def test_abort_before_the_build_starts_and_of_unknown_dataset(
    service: Settings, nc, js, images: Path
) -> None:
    """A queued build aborted at once never runs; an unknown id is a 404."""
    folder = make_folder(images / "queued", {"a_cat": 3, "b": 3})
    accepted, _ = await create(nc, folder)
    assert accepted is not None
    _, rejected = await request(
        nc, subjects.CMD_DATASETS_ABORT, AbortDataset(dataset_id=accepted.id, principal=ALICE)
    )
    assert rejected is None
    events = await wait_terminal(js, accepted.id)
    assert not any(isinstance(e, DatasetBuilt) for e in events)
    _, rejected = await request(
        nc, subjects.CMD_DATASETS_ABORT, AbortDataset(dataset_id="nope", principal=ALICE)
    )
    assert rejected is not None and (rejected.code, rejected.field) == (404, "dataset_id")


async def test_delete_is_refused_while_a_model_uses_the_dataset(
    service: Settings, nc, js, images: Path
) -> None:
    """A ModelCreated on the dataset blocks delete (403); after ModelDeleted delete removes all."""
    folder = make_folder(images / "del", {"a_cat": 4, "b": 4})
    accepted, _ = await create(nc, folder)
    assert accepted is not None
    assert isinstance((await wait_terminal(js, accepted.id))[-1], DatasetBuilt)
    assert len(await blob_names(js)) >= 7

    models = EventStore(js, subjects.STREAM_MODELS, codec.model_events)
    subject = subjects.model_events("m-1")
    seq = await models.append(
        subject,
        [ModelCreated(model_id="m-1", name="m", dataset_id=accepted.id, spec=TrainSpec())],
        0,
    )
    delete = DeleteDataset(dataset_id=accepted.id, principal=ALICE)
    _, rejected = await request(nc, subjects.CMD_DATASETS_DELETE, delete)
    assert rejected is not None and rejected.code == 403
    assert rejected.message == (
        f"Cannot delete dataset {accepted.id} because 1 model(s) depend on it: m-1"
    )

    await models.append(subject, [ModelDeleted(model_id="m-1")], seq)
    body, rejected = await request(nc, subjects.CMD_DATASETS_DELETE, delete)
    assert rejected is None
    reply = codec.command_reply.decode(body)
    assert isinstance(reply, Accepted) and reply.seq > 0
    assert isinstance((await history(js, accepted.id))[-1], DatasetDeleted)
    assert await blob_names(js) == []
    _, rejected = await request(nc, subjects.CMD_DATASETS_DELETE, delete)
    assert rejected is not None and rejected.code == 404
