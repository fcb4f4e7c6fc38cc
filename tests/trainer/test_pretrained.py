"""Pretrained models end to end in one process: the real trainer, inference service and gateway
over a real nats-server (only the datasets service and the gpu-broker are faked)."""

from __future__ import annotations

import asyncio
import io
import json
import tarfile
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from digits_gateway.app import create_app
from digits_inference.settings import Settings as InferenceSettings
from digits_proto import codec, subjects
from digits_proto.base import JobStatus
from digits_proto.models import MakePretrained, PretrainedModelCreated
from digits_proto.runtime import EventStore, ServiceHost, request
from tests.fakes.archives import tgz_bytes, zip_bytes
from tests.fakes.principals import ADMIN, BOB
from tests.gateway.accounts import seed_accounts, sign_in
from tests.gateway.conftest import make_settings, running, wait_ready
from tests.gateway.fake_backend import FakeBackend
from tests.inference.inprocess import running_inference
from tests.trainer.test_service import (
    FakeBroker,
    add_dataset,
    create,
    status_is,
    stored_log,
    trainer,
    wait_for,
)
from tests.trainer.toy import LABELS, png_bytes, toy_images

pytestmark = pytest.mark.timeout(120)

CLASSIFY = "/models/images/classification/classify_one.json"


@pytest.fixture
async def inference(nats_url: str, tmp_path: Path) -> AsyncIterator[ServiceHost]:
    """The inference service in this process."""
    settings = InferenceSettings(nats_url=nats_url, data_dir=str(tmp_path / "inf"), port=-1)
    async with running_inference(settings) as host:
        yield host


@pytest.fixture
async def client(nats_url, nc, js, tmp_path, inference) -> AsyncIterator[httpx.AsyncClient]:
    """A ready gateway over the real trainer and inference service, logged in as alice."""
    await FakeBroker().serve(nc)
    fake = FakeBackend(nc, js)
    await fake.start((subjects.SERVICE_DATASETS,))
    async with trainer(nats_url, tmp_path / "trainer"):
        settings = make_settings(nats_url, tmp_path, max_upload_bytes=8 * 1024 * 1024)
        await seed_accounts(js)
        async with running(create_app(settings)) as c:
            await wait_ready(c, timeout=20)
            await sign_in(c, "alice")
            yield c
    await fake.stop()


def sample_images(n: int = 4) -> list[bytes]:
    """A few toy images of every class, as PNG uploads."""
    images, _ = toy_images(n, seed=7)
    return [png_bytes(image) for image in images]


async def predictions(c: httpx.AsyncClient, job_id: str, images: list[bytes]) -> list:
    """classify_one.json's top-5 for each image."""
    out = []
    for image in images:
        files = {"image_file": ("x.png", image, "image/png")}
        r = await c.post(CLASSIFY, data={"job_id": job_id}, files=files)
        assert r.status_code == 200, r.text
        out.append(r.json()["predictions"])
    return out


async def upload(c: httpx.AsyncClient, archive: bytes, filename: str = "m.tar.gz", **data):
    """POST an archive to /pretrained_models/upload_archive."""
    files = {"archive": (filename, archive, "application/octet-stream")}
    return await c.post("/pretrained_models/upload_archive", data=data, files=files)


async def trained_model(c: httpx.AsyncClient, nc, js, tmp_path: Path) -> str:
    """A toy LeNet trained for one epoch (Done, one snapshot)."""
    dataset_id, _ = await add_dataset(js, tmp_path / "toy")
    reply = await create(nc, dataset_id, train_epochs=1, standard_network="lenet")
    await wait_for(js, reply.id, status_is(JobStatus.DONE))
    for _ in range(100):  # the gateway's projection catches up
        if (await c.get(f"/models/{reply.id}.json")).json().get("status") == "Done":
            break
        await asyncio.sleep(0.05)
    return reply.id


async def test_download_upload_classify_gives_the_same_predictions(client, nc, js, tmp_path):
    """A trained model's downloaded archive, uploaded as a pretrained model, classifies the same
    images exactly as the model does; the job is listed, shown, redirected to and deletable."""
    model_id = await trained_model(client, nc, js, tmp_path)
    archive = (await client.get(f"/models/{model_id}/download")).content
    r = await upload(client, archive)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "success"
    pretrained_id = body["id"]

    images = sample_images()
    expected = await predictions(client, model_id, images)
    assert await predictions(client, pretrained_id, images) == expected
    assert {p[0][0] for p in expected} <= set(LABELS)

    home = (await client.get("/completed_jobs.json")).json()
    assert [j["id"] for j in home["pretrained_models"]] == [pretrained_id]
    assert home["pretrained_models"][0]["type"] == "pretrained_model"
    index = (await client.get("/index.json")).json()
    assert [j["id"] for j in index["pretrained_models"]] == [pretrained_id]
    shown = (await client.get(f"/pretrained_models/{pretrained_id}.json")).json()
    assert shown["labels"] == LABELS and shown["image dimensions"] == [28, 28, 1]
    assert shown["status"] == "Done" and shown["fine_tunable"] is True
    page = await client.get(f"/pretrained_models/{pretrained_id}", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "Pretrained model" in page.text
    r = await client.get(f"/jobs/{pretrained_id}", follow_redirects=False)
    assert r.status_code == 302 and r.headers["location"] == f"/pretrained_models/{pretrained_id}"
    back = await client.get(f"/models/{pretrained_id}", headers={"Accept": "text/html"})
    assert back.status_code == 302  # the classify pages' "back to the model" link
    assert (await client.get(f"/models/{pretrained_id}.json")).status_code == 404
    status = (await client.get(f"/jobs/{pretrained_id}/status")).json()
    assert status["type"] == "Pretrained Model" and status["status"] == "Done"

    # Deleting the original model leaves the pretrained one whole (its files were copied).
    assert (await client.delete(f"/models/{model_id}")).status_code == 200
    assert await predictions(client, pretrained_id, images) == expected
    r = await client.delete(f"/pretrained_models/{pretrained_id}")
    assert r.status_code == 200 and r.text == "Job deleted."
    assert (await client.get(f"/pretrained_models/{pretrained_id}.json")).status_code == 404
    assert (await client.get("/completed_jobs.json")).json()["pretrained_models"] == []


async def test_to_pretrained_registers_the_snapshot_like_digits(client, nc, js, tmp_path):
    """`/models/<id>/to_pretrained` 302s to a pretrained model that classifies like its model
    and keeps its network's source for fine-tuning; bad epochs and ids are refused."""
    model_id = await trained_model(client, nc, js, tmp_path)
    r = await client.post(f"/models/{model_id}/to_pretrained", data={"epoch": "1"})
    assert r.status_code == 302, r.text
    pretrained_id = r.headers["location"].rsplit("/", 1)[-1]
    images = sample_images(2)
    assert await predictions(client, pretrained_id, images) == await predictions(
        client, model_id, images
    )
    shown = (await client.get(f"/pretrained_models/{pretrained_id}.json")).json()
    assert shown["source"] == "model" and shown["source_model_id"] == model_id

    source = await client.post("/models/customize", params={"network": pretrained_id})
    assert "def build_network" in source.json()["network"]
    dataset_id = (await client.get(f"/models/{model_id}.json")).json()["dataset_id"]
    r = await client.post(
        "/models/images/classification.json",
        data={
            "dataset": dataset_id,
            "model_name": "tuned",
            "method": "pretrained",
            "pretrained_networks": model_id,  # a trained model is not a pretrained one
        },
    )
    assert r.status_code == 400 and "pretrained_networks" in r.json()["errors"]

    r = await client.post(f"/models/{model_id}/to_pretrained", data={"epoch": "7"})
    assert r.status_code == 400 and "snapshot_epoch" in r.json()["errors"]
    assert (await client.post("/models/nope/to_pretrained")).status_code == 404
    assert (await client.get(f"/models/{model_id}/to_pretrained")).status_code == 405

    # On the bus, no gateway: bob may not clone alice's model; the admin may, and owns the copy.
    bobs = MakePretrained(model_id=model_id, principal=BOB)
    _, rejected = await request(nc, subjects.CMD_MODELS_TO_PRETRAINED, bobs, timeout=30)
    assert rejected is not None and rejected.code == 403 and "alice" in rejected.message
    admins = MakePretrained(model_id=model_id, principal=ADMIN)
    body, rejected = await request(nc, subjects.CMD_MODELS_TO_PRETRAINED, admins, timeout=60)
    assert rejected is None, rejected
    store = EventStore(js, subjects.STREAM_MODELS, codec.model_events)
    for job_id, who in ((pretrained_id, "alice"), (codec.command_reply.decode(body).id, "admin")):
        created = (await store.load(subjects.model_events(job_id)))[0][0]
        assert isinstance(created, PretrainedModelCreated)
        assert (created.username, created.actor) == (who, who)


def lenet_files(folder: Path, classes: int = 3) -> tuple[Path, Path]:
    """An exported, randomly initialised LeNet for 28×28 gray images (symbol, params)."""
    import mxnet as mx

    from digits_trainer.nets import build_model, initializer
    from digits_trainer.networks import source

    mean = np.full((1, 28, 28), 20.0, np.float32)
    net = build_model(source("lenet"), classes, (1, 28, 28), mean)
    net.initialize(initializer())
    net.hybridize()
    net(mx.nd.zeros((1, 1, 28, 28)))
    folder.mkdir(parents=True, exist_ok=True)
    net.export(str(folder / "lenet"), epoch=3)
    return folder / "lenet-symbol.json", folder / "lenet-0003.params"


def make_archive(members: dict[str, bytes], fmt: str = "tar.gz") -> bytes:
    """An archive holding `members` (name → bytes)."""
    return zip_bytes(members) if fmt == "zip" else tgz_bytes(members)


def lenet_archive(tmp_path: Path, drop: str = "", extra: dict[str, bytes] | None = None) -> bytes:
    """A DIGITS-style archive of a LeNet: info.json (less the key `drop`), network, weights."""
    symbol, params = lenet_files(tmp_path / "lenet")
    info = {
        "name": "uploaded lenet",
        "framework": "mxnet",
        "snapshot file": "w.params",
        "model file": "net-symbol.json",
        "labels file": "labels.txt",
        "image dimensions": [28, 28, 1],
        "image resize mode": "squash",
    }
    info.pop(drop, None)
    members = {
        "info.json": json.dumps(info).encode(),
        "w.params": params.read_bytes(),
        "net-symbol.json": symbol.read_bytes(),
        "labels.txt": b"a\nb\nc\n",
    }
    return make_archive({**members, **(extra or {})})


async def test_a_model_fine_tunes_from_an_uploaded_archive(client, nc, js, tmp_path):
    """A new model with method=pretrained on an uploaded archive trains to Done: its network is
    rebuilt from the symbol and every saved weight loaded (same class count: none afresh)."""
    r = await upload(client, lenet_archive(tmp_path))
    assert r.status_code == 200, r.text
    pretrained_id = r.json()["id"]
    dataset_id, _ = await add_dataset(js, tmp_path / "toy")
    tuned = await create(
        nc, dataset_id, method="pretrained", previous_network=pretrained_id, train_epochs=1
    )
    events = await wait_for(js, tuned.id, status_is(JobStatus.DONE))
    assert "build_network" in events[0].spec.custom_network
    log = await stored_log(js, tuned.id)  # the local folder goes when the job ends
    assert "freshly initialized: []" in log


async def test_hostile_archives_are_refused_naming_the_cause(client, js, tmp_path):
    """Missing info.json keys, a non-archive, `../` and link members, a foreign framework: each
    a 400 whose `status` says why (DIGITS answered 500); nothing is registered."""
    missing = await upload(client, lenet_archive(tmp_path, drop="snapshot file"))
    assert missing.status_code == 400
    assert missing.json()["status"] == "Missing Key 'snapshot file' in info.json"
    assert "archive" in missing.json()["errors"]
    no_model = await upload(client, lenet_archive(tmp_path, drop="model file"))
    assert no_model.json()["status"] == "Missing Key 'model file' in info.json"

    not_archive = await upload(client, b"just text, not an archive", filename="m.tar.gz")
    assert not_archive.status_code == 400
    assert not_archive.json()["status"].startswith("Incorrect Archive Type")
    wrong_name = await upload(client, b"PK", filename="m.rar")
    assert wrong_name.status_code == 400
    assert wrong_name.json()["status"].startswith("Incorrect Archive Type")

    escape = await upload(client, lenet_archive(tmp_path, extra={"../evil.txt": b"x"}))
    assert escape.status_code == 400 and "outside the archive" in escape.json()["status"]
    absolute = make_archive({"/etc/evil": b"x", "info.json": b"{}"}, "zip")
    r = await upload(client, absolute, filename="m.zip")
    assert r.status_code == 400 and "absolute path" in r.json()["status"]

    link = io.BytesIO()
    with tarfile.open(fileobj=link, mode="w") as tf:
        info = tarfile.TarInfo("info.json")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(info)
    r = await upload(client, link.getvalue(), filename="m.tar")
    assert r.status_code == 400 and "is a link" in r.json()["status"]

    caffe = make_archive(
        {
            "info.json": json.dumps(
                {"name": "x", "framework": "caffe", "snapshot file": "a", "model file": "b"}
            ).encode()
        }
    )
    r = await upload(client, caffe)
    assert r.status_code == 400 and "caffe" in r.json()["status"]
    outside = make_archive(
        {
            "info.json": json.dumps(
                {"name": "x", "framework": "mxnet", "snapshot file": "w", "model file": "../s"}
            ).encode()
        }
    )
    r = await upload(client, outside)
    assert r.status_code == 400 and "outside the archive" in r.json()["status"]
    too_big = await upload(client, b"\0" * (9 * 1024 * 1024))  # the gateway's limit: 8 MiB
    assert too_big.status_code == 413
    assert (await client.get("/completed_jobs.json")).json()["pretrained_models"] == []
    assert (await client.post("/pretrained_models/upload_archive")).status_code == 400


async def test_new_from_files_checks_fields_and_loads_the_network(client, tmp_path):
    """`/pretrained_models/new`: wrong extensions, a missing name and weights MXNet cannot load
    are 400s naming the field; good files register a model that classifies (labels used)."""
    symbol, params = lenet_files(tmp_path / "files")

    async def new(name: str = "from files", **files: tuple[str, bytes]):
        data = {"job_name": name, "image_type": "1", "width": "28", "height": "28"}
        parts = {k: (name, body, "application/octet-stream") for k, (name, body) in files.items()}
        return await client.post("/pretrained_models/new.json", data=data, files=parts)

    good = {
        "weights_file": ("w.params", params.read_bytes()),
        "model_def_file": ("net-symbol.json", symbol.read_bytes()),
    }
    r = await new(**{**good, "weights_file": ("w.caffemodel", b"x")})
    assert r.status_code == 400 and "weights_file" in r.json()["errors"]
    r = await new(**{**good, "model_def_file": ("net.prototxt", b"x")})
    assert r.status_code == 400 and "model_def_file" in r.json()["errors"]
    r = await new("", **good)
    assert r.status_code == 400 and "job_name" in r.json()["errors"]
    r = await new(**{**good, "weights_file": ("w.params", b"garbage, not NDArrays")})
    assert r.status_code == 400, r.text
    assert "cannot be loaded" in r.json()["errors"]["weights_file"][0]

    r = await new(**good, labels_file=("labels.txt", b"zero\none\ntwo\n"))
    assert r.status_code == 200, r.text
    job_id = r.json()["id"]
    [top] = await predictions(client, job_id, sample_images(1)[:1])
    assert {label for label, _ in top} == {"zero", "one", "two"}
    r = await client.post(
        "/pretrained_models/new", data={"job_name": "x"}, headers={"Accept": "text/html"}
    )
    assert r.status_code == 400 and "This field is required." in r.text
