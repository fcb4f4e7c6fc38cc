"""Classify many's fast paths give what the slow ones gave: the list inside the command and the
result inside the reply (blobs kept for the rest), the batch pipeline (order, failures, threads),
vectorized percents, per-folder path resolution."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from pathlib import Path

import msgspec
import numpy as np
import pytest
from mxnet.base import MXNetError

from digits_inference import app
from digits_inference.many import parse_list, percents
from digits_inference.predictor import Predictor
from digits_inference.settings import Settings
from digits_proto import codec, subjects
from digits_proto.base import BlobRef
from digits_proto.inference import ClassifiedMany, ClassifyMany, ManyResult
from digits_proto.replies import Rejected
from digits_proto.runtime import ServiceHost, request
from tests.fakes.principals import ALICE
from tests.inference.test_gateway_routes import client  # noqa: F401
from tests.inference.test_many import service  # noqa: F401
from tests.inference.test_many_routes import LIST, MANY, post_list
from tests.inference.test_service import NORMAL, REVERSED, add_dataset, add_model, png

NO_LIST = BlobRef(bucket="", name="")


async def ask(nc, **fields) -> ClassifiedMany | Rejected:
    """Send ClassifyMany with the list inline; the decoded reply."""
    body, rejected = await request(
        nc,
        subjects.CMD_INFERENCE_CLASSIFY_MANY,
        ClassifyMany(image_list=NO_LIST, **{"principal": ALICE, **fields}),
        30,
    )
    if rejected:
        return rejected
    reply = codec.classify_many_reply.decode(body)
    assert isinstance(reply, ClassifiedMany)
    return reply


async def uploads(js) -> list[str]:
    """Names of the live objects in the uploads bucket."""
    store = await js.object_store(subjects.BUCKET_UPLOADS)
    try:
        return [i.name for i in await store.list() if not i.deleted]
    except Exception:  # noqa: BLE001 - nats-py raises NotFoundError for an empty bucket
        return []


@asynccontextmanager
async def inference(nats_url: str, js, tmp_path: Path, **settings):
    """The inference service over `<tmp>/images` (grey PNGs) with model m, custom settings."""
    await add_dataset(js, "d")
    await add_model(js, tmp_path / "nets", "m", "d", {1.0: REVERSED, 2.0: NORMAL})
    images = tmp_path / "images"
    images.mkdir()
    for name, level in (("black", 0), ("grey", 128), ("white", 255), ("dark", 20)):
        (images / f"{name}.png").write_bytes(png(level))
    base = {"data_dir": str(tmp_path / "data"), "port": -1, "data_roots": [str(images)]}
    host = ServiceHost(subjects.SERVICE_INFERENCE, nats_url, http_port=-1)
    task = asyncio.create_task(app.main(Settings(nats_url=nats_url, **base | settings), host))
    for _ in range(500):
        if host.ready or task.done():
            break
        await asyncio.sleep(0.01)
    assert host.ready
    try:
        yield images
    finally:
        host.stop.set()
        await asyncio.wait_for(task, 10)


async def test_a_small_list_and_its_result_travel_inside_the_messages(service, nc, js) -> None:  # noqa: F811
    """image_list_text replaces the list blob and inline_result brings the result in the reply:
    nothing is written to the uploads bucket, and the result is the one the blob path gives."""
    text = "black.png 0\nwhite.png 2\njunk.png 1\n../x.png 0\n"
    reply = await ask(
        nc, job_id="m", image_folder=str(service), image_list_text=text, inline_result=True
    )
    assert isinstance(reply, ClassifiedMany) and reply.inline is not None
    assert reply.result.name == "" and reply.count == 2
    assert await uploads(js) == []
    assert [r.predictions[0][0] for r in reply.inline.results] == ["dark", "bright"]
    assert [e.line for e in reply.inline.errors] == [3, 4]
    assert reply.inline.top1_accuracy == 100.0

    blob = await ask(nc, job_id="m", image_folder=str(service), image_list_text=text)
    assert isinstance(blob, ClassifiedMany) and blob.inline is None  # not asked for: a blob
    store = await js.object_store(subjects.BUCKET_UPLOADS)
    stored = msgspec.json.decode((await store.get(blob.result.name)).data, type=ManyResult)
    assert stored.results == reply.inline.results and stored.confusion == reply.inline.confusion
    assert [e.line for e in stored.errors] == [3, 4]


async def test_a_result_too_big_for_one_message_still_comes_as_a_blob(
    nats_url, nc, js, tmp_path, monkeypatch
) -> None:
    """With no room in a message for the result, inline_result falls back to the blob."""
    monkeypatch.setattr(app, "REPLY_HEADROOM", 1 << 40)  # no reply can hold a result
    async with inference(nats_url, js, tmp_path) as images:
        reply = await ask(nc, job_id="m", image_folder=str(images), image_list_text="grey.png 1\n")
        assert isinstance(reply, ClassifiedMany) and reply.inline is None
        assert reply.result.name.startswith("classify-many/")
        store = await js.object_store(subjects.BUCKET_UPLOADS)
        result = msgspec.json.decode((await store.get(reply.result.name)).data, type=ManyResult)
        assert result.results[0].path == str(images / "grey.png")


async def test_an_inline_list_over_the_size_limit_is_refused(nats_url, nc, js, tmp_path) -> None:
    """max_list_bytes bounds a list inside the command as it bounds an uploaded one."""
    async with inference(nats_url, js, tmp_path, max_list_bytes=20) as images:
        text = "grey.png 1\nwhite.png 2\nblack.png 0\n"
        rejected = await ask(nc, job_id="m", image_folder=str(images), image_list_text=text)
        assert isinstance(rejected, Rejected)
        assert (rejected.code, rejected.field) == (400, "image_list")
        assert "too large" in rejected.message


async def test_a_network_failure_mid_list_refuses_it_and_the_next_list_runs(
    nats_url, nc, js, tmp_path, monkeypatch
) -> None:
    """A forward pass failing on the second batch refuses the request (500, the snapshot named)
    with the batches still in flight drained; the service then classifies the next list."""
    forward = Predictor.forward_here
    calls = {"n": 0}

    def failing(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise MXNetError("Check failed: broken operator")
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(Predictor, "forward_here", failing)
    text = "black.png 0\ngrey.png 1\nwhite.png 2\ndark.png 0\n" * 3
    async with inference(nats_url, js, tmp_path, batch_size=2) as images:
        rejected = await ask(nc, job_id="m", image_folder=str(images), image_list_text=text)
        assert isinstance(rejected, Rejected) and rejected.code == 500
        assert "broken operator" in rejected.message
        reply = await ask(
            nc, job_id="m", image_folder=str(images), image_list_text=text, inline_result=True
        )
        assert isinstance(reply, ClassifiedMany) and reply.count == 12


async def test_the_gateway_sends_big_lists_through_the_uploads_bucket(
    client,  # noqa: F811
    service,  # noqa: F811
    js,
    monkeypatch,
) -> None:
    """A list over the inline bound goes as a blob, a small one inside the command: both give
    the same JSON, and neither leaves a list or a result behind in the uploads bucket."""
    from digits_gateway import many

    small = await post_list(client, f"{MANY}.json", LIST, job_id="m", image_folder=str(service))
    monkeypatch.setattr(many, "INLINE_LIST_BYTES", 0)
    big = await post_list(client, f"{MANY}.json", LIST, job_id="m", image_folder=str(service))
    assert small.status_code == big.status_code == 200, big.text
    lines = [[e["line"] for e in r.json().pop("errors")] for r in (small, big)]
    assert lines == [[5, 6], [5, 6]]
    assert {**small.json(), "errors": None} == {**big.json(), "errors": None}
    assert await uploads(js) == []


@pytest.mark.parametrize("threads", [1, 3])
async def test_decoding_in_parallel_keeps_the_order_of_the_list(
    nats_url, nc, js, tmp_path, threads
) -> None:
    """Batches decoded by one or several threads ahead of the network are classified and
    reported in the list's order, bad lines included."""
    names = ["black", "grey", "white", "junk", "dark"] * 3
    text = "".join(f"{name}.png\n" for name in names)
    async with inference(nats_url, js, tmp_path, batch_size=1, decode_threads=threads) as images:
        (images / "junk.png").write_bytes(b"not an image")
        reply = await ask(
            nc, job_id="m", image_folder=str(images), image_list_text=text, inline_result=True
        )
        assert isinstance(reply, ClassifiedMany) and reply.inline is not None
        good = [str(images / f"{n}.png") for n in names if n != "junk"]
        assert [r.path for r in reply.inline.results] == good
        assert [e.line for e in reply.inline.errors] == [4, 9, 14]


def test_decode_threads_default_to_the_cores_the_network_leaves() -> None:
    """0 = auto: the cores OpenMP leaves, at least one, at most four; a set count is kept."""
    assert Settings(omp_threads=10_000).decode_workers == 1
    assert 1 <= Settings().decode_workers <= 4
    assert Settings(decode_threads=6).decode_workers == 6


def test_percents_round_exactly_as_python_round() -> None:
    """Vectorized percents equal `round(100 * p, 2)`, half-cent cases (x.xx5) included."""
    halves = np.arange(0, 100_001, 5) / 100_000  # 100·p ends in 5 at the third decimal
    probs = np.concatenate([halves, np.random.default_rng(0).dirichlet(np.ones(10), 500).ravel()])
    expected = [round(100.0 * float(p), 2) for p in probs]
    assert [row[0] for row in percents(probs[:, None])] == expected


def test_parse_list_resolves_links_per_file_and_folders_once(tmp_path) -> None:
    """A linked file is checked where it points (outside: refused); a linked folder inside the
    roots resolves to its target; plain files keep their folder's real path."""
    root = tmp_path / "root"
    (root / "real").mkdir(parents=True)
    (root / "real" / "a.png").write_bytes(b"x")
    (root / "alias").symlink_to(root / "real")
    (root / "out.png").symlink_to(tmp_path / "secret.png")
    (root / "in.png").symlink_to(root / "real" / "a.png")
    text = "alias/a.png 0\nout.png 1\nin.png 2\nreal/b.png\n"
    entries = parse_list(text, str(root), [str(root)], 3)
    real = root.resolve() / "real"  # tmp_path itself may lie behind a link
    a, b = str(real / "a.png"), str(real / "b.png")
    assert [e.resolved for e in entries] == [a, None, a, b]
    assert entries[1].error == "Outside the data roots"
    assert [e.path for e in entries][:2] == [str(root / "alias/a.png"), str(root / "out.png")]
