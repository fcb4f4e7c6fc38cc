"""Classify many: list parsing, per-line refusals, accuracy and confusion, top-N, via the bus."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from digits_inference import app
from digits_inference.many import parse_list
from digits_inference.settings import Settings
from digits_proto import codec, subjects
from digits_proto.inference import (
    ClassifiedMany,
    ClassifyMany,
    ClassifyManyQueued,
    ManyResult,
    ManyStatus,
)
from digits_proto.replies import Rejected
from digits_proto.runtime import ServiceHost, put_bytes, read_bytes, request
from tests.fakes.principals import ALICE
from tests.inference.test_service import NORMAL, REVERSED, add_dataset, add_model, png


def test_parse_list_resolves_paths_and_ignores_invalid_labels(tmp_path) -> None:
    """Relative paths join image_folder; labels outside 0..n-1 are dropped; blank lines skipped."""
    root = tmp_path / "root"
    text = "a.png 0\n\n  b c.png   2 \nd.png 3\ne.png -1\n/etc/passwd 1\nf.png\n"
    entries = parse_list(text, str(root), [str(root)], n_labels=3)
    assert [(e.path, e.label) for e in entries] == [
        (str(root / "a.png"), 0),
        (str(root / "b c.png"), 2),
        (str(root / "d.png"), None),
        (str(root / "e.png"), None),
        ("/etc/passwd", 1),
        (str(root / "f.png"), None),
    ]
    assert [e.error for e in entries if e.resolved is None] == ["Outside the data roots"]


def test_parse_list_refuses_traversal_and_honours_num_test_images(tmp_path) -> None:
    """`../` escaping the roots is refused per line; num_test_images caps the lines read."""
    entries = parse_list(
        "../x.png 0\nok.png 1\nmore.png 1\n", str(tmp_path / "r"), [str(tmp_path / "r")], 3, limit=2
    )
    assert len(entries) == 2
    assert entries[0].resolved is None and entries[1].resolved is not None
    assert all(e.resolved is None for e in parse_list("x.png", "", [], 3))


@pytest.fixture
async def service(nats_url: str, js, tmp_path: Path) -> AsyncIterator[Path]:
    """The inference service with data root `<tmp>/images` holding grey images; models m, empty."""
    await add_dataset(js, "d")
    await add_model(js, tmp_path / "nets", "m", "d", {1.0: REVERSED, 2.0: NORMAL})
    await add_model(js, tmp_path / "nets", "empty", "d", {})
    images = tmp_path / "images"
    images.mkdir()
    for name, level in (("black", 0), ("grey", 128), ("white", 255), ("dark", 20)):
        (images / f"{name}.png").write_bytes(png(level))
    (images / "junk.png").write_bytes(b"not an image at all")
    settings = Settings(
        nats_url=nats_url,
        data_dir=str(tmp_path / "data"),
        port=-1,
        data_roots=[str(images)],
        batch_size=2,
    )
    host = ServiceHost(subjects.SERVICE_INFERENCE, nats_url, http_port=-1)
    task = asyncio.create_task(app.main(settings, host))
    for _ in range(500):
        if host.ready or task.done():
            break
        await asyncio.sleep(0.01)
    assert host.ready
    yield images
    host.stop.set()
    await asyncio.wait_for(task, 10)


async def classify_many(nc, js, text: str, **fields) -> ManyResult | Rejected:
    """Upload the list, send ClassifyMany, fetch the result blob."""
    ref = await put_bytes(js, subjects.BUCKET_UPLOADS, "lists/x.txt", text.encode())
    body, rejected = await request(
        nc,
        subjects.CMD_INFERENCE_CLASSIFY_MANY,
        ClassifyMany(image_list=ref, **{"principal": ALICE, **fields}),
        30,
    )
    if rejected:
        return rejected
    reply = codec.classify_many_reply.decode(body)
    assert isinstance(reply, ClassifiedMany)
    store = await js.object_store(reply.result.bucket)
    result = msgspec.json.decode((await store.get(reply.result.name)).data, type=ManyResult)
    assert reply.count == len(result.results)
    return result


async def test_classify_many_reports_accuracy_confusion_and_bad_lines(service, nc, js) -> None:
    """4 labelled images (one wrong), a junk file, a missing file, a path outside the roots."""
    text = (
        "black.png 0\ngrey.png 1\nwhite.png 2\ndark.png 2\n"
        "junk.png 1\nmissing.png 0\n../../outside.png 0\nwhite.png 7\n"
    )
    result = await classify_many(nc, js, text, job_id="m", image_folder=str(service))
    assert isinstance(result, ManyResult), result
    assert [r.predictions[0][0] for r in result.results] == [
        "dark",
        "mid",
        "bright",
        "dark",
        "bright",
    ]
    assert result.results[-1].label is None  # label 7 of 3 classes: ignored, not an error
    assert sorted(e.line for e in result.errors) == [5, 6, 7]
    assert result.top1_accuracy == 75.0 and result.top5_accuracy == 100.0
    assert result.confusion == [[1, 0, 0], [0, 1, 0], [1, 0, 1]]
    assert result.per_class_accuracy == [100.0, 100.0, 50.0]


async def test_classify_many_without_labels_has_no_accuracy(service, nc, js) -> None:
    """Paths only: predictions per image, no accuracy or confusion matrix."""
    result = await classify_many(
        nc, js, f"{service}/white.png\n{service}/black.png\n", job_id="m", snapshot_epoch=1.0
    )
    assert isinstance(result, ManyResult)
    assert [r.predictions[0][0] for r in result.results] == ["dark", "bright"]
    assert result.top1_accuracy is None and result.confusion is None


async def test_top_n_keeps_the_best_images_per_class_with_a_mosaic(service, nc, js) -> None:
    """top_n=2: for 'dark' the black then the dark image, each class with a PNG mosaic."""
    text = "black.png\ngrey.png\nwhite.png\ndark.png\n"
    result = await classify_many(nc, js, text, job_id="m", image_folder=str(service), top_n=2)
    assert isinstance(result, ManyResult)
    by_label = {t.label: t for t in result.top_n}
    assert [Path(p).name for p in by_label["dark"].paths] == ["black.png", "dark.png"]
    assert by_label["bright"].paths[0].endswith("white.png")
    assert all(t.mosaic.startswith("data:image/png;base64,") for t in result.top_n)


async def test_classify_many_refusals(service, nc, js) -> None:
    """Unknown job 404, no snapshot 409, an empty list 400 on image_list."""
    for job_id, text, code in (("nope", "a.png", 404), ("empty", "a.png", 409), ("m", "\n", 400)):
        reply = await classify_many(nc, js, text, job_id=job_id)
        assert isinstance(reply, Rejected) and reply.code == code, reply


async def test_background_job_reports_progress_and_result(service, nc, js) -> None:
    """background=True queues a ticket; the status blob goes to Done with the result blob."""
    ref = await put_bytes(
        js, subjects.BUCKET_UPLOADS, "lists/bg.txt", b"black.png 0\nwhite.png 2\nnope.png 1\n"
    )
    cmd = ClassifyMany(
        job_id="m", image_list=ref, image_folder=str(service), background=True, principal=ALICE
    )
    body, rejected = await request(nc, subjects.CMD_INFERENCE_CLASSIFY_MANY, cmd, 10)
    assert rejected is None
    queued = codec.classify_many_reply.decode(body)
    assert isinstance(queued, ClassifyManyQueued) and queued.total == 3
    for _ in range(200):  # read_bytes: a get racing the in-place rewrite would hang
        raw = await read_bytes(js, subjects.BUCKET_UPLOADS, queued.status.name)
        status = msgspec.json.decode(raw, type=ManyStatus)
        if status.status in ("Done", "Error"):
            break
        await asyncio.sleep(0.05)
    assert status.status == "Done" and status.done == status.total == 3
    result = msgspec.json.decode(
        await read_bytes(js, subjects.BUCKET_UPLOADS, status.result.name), type=ManyResult
    )
    assert result.top1_accuracy == 100.0 and [e.line for e in result.errors] == [3]


async def test_background_job_refusals_are_immediate(service, nc, js) -> None:
    """A queued job is validated first: unknown job is a 404 reply, not a failed job."""
    ref = await put_bytes(js, subjects.BUCKET_UPLOADS, "lists/bad.txt", b"a.png\n")
    cmd = ClassifyMany(job_id="nope", image_list=ref, background=True, principal=ALICE)
    _, rejected = await request(nc, subjects.CMD_INFERENCE_CLASSIFY_MANY, cmd, 10)
    assert rejected is not None and rejected.code == 404
