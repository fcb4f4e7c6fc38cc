"""DIGITS's model routes: create (and sweeps), model json, classify one, abort."""

from __future__ import annotations

import io
import random

import httpx
import pytest
from PIL import Image

from tests.gateway.fake_backend import FakeBackend
from tests.gateway.helpers import until


async def built_dataset(client: httpx.AsyncClient, backend: FakeBackend) -> str:
    r = await client.post(
        "/datasets/images/classification.json",
        data={"dataset_name": "pets", "folder_train": "/data/pets"},
    )
    dataset_id = str(r.json()["id"])
    await backend.build(dataset_id)

    async def done() -> bool:
        r = await client.get(f"/datasets/{dataset_id}/status")
        return r.json()["status"] == "Done"

    await until(done)
    return dataset_id


def form(dataset_id: str, **changes: str) -> dict[str, str]:
    return {
        "dataset": dataset_id,
        "model_name": "net",
        "standard_networks": "lenet",
        "train_epochs": "2",
        "framework": "caffe",
        **changes,
    }


def png(size: int = 8, noise: bool = False) -> bytes:
    image = Image.new("RGB", (size, size), (200, 10, 10))
    if noise:
        image = Image.frombytes("RGB", (size, size), random.Random(0).randbytes(size * size * 3))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


async def test_create_answers_the_model_json(client, backend) -> None:
    """One job: DIGITS's model json_dict, readable right after."""
    dataset_id = await built_dataset(client, backend)
    r = await client.post("/models/images/classification.json", data=form(dataset_id))
    assert r.status_code == 200, r.text
    model = r.json()
    assert model["status"] == "Initialized" and model["name"] == "net"
    assert model["dataset_id"] == dataset_id and model["job id"] == model["id"]
    assert model["framework"] == "mxnet" and model["image dimensions"] == [28, 32, 3]
    assert model["snapshots"] == [] and model["snapshot file"] == "no snapshots"
    assert model["username"] == "alice" and model["spec"]["train_epochs"] == 2
    again = (await client.get(f"/models/{model['id']}.json")).json()
    assert again["id"] == model["id"]
    index = (await client.get("/index.json")).json()
    assert [m["id"] for m in index["models"]] == [model["id"]]


async def test_a_learning_rate_list_is_a_sweep(client, backend) -> None:
    """learning_rate=[0.01,0.02] and batch_size=8,10 make four jobs named like DIGITS's."""
    dataset_id = await built_dataset(client, backend)
    r = await client.post(
        "/models/images/classification.json",
        data=form(dataset_id, learning_rate="[0.01, 0.02]", batch_size="8,10"),
    )
    jobs = r.json()["jobs"]
    assert sorted(j["name"] for j in jobs) == [
        "net learning_rate:0.01 batch_size:10",
        "net learning_rate:0.01 batch_size:8",
        "net learning_rate:0.02 batch_size:10",
        "net learning_rate:0.02 batch_size:8",
    ]
    assert {(j["spec"]["learning_rate"], j["spec"]["batch_size"]) for j in jobs} == {
        (0.01, 8),
        (0.01, 10),
        (0.02, 8),
        (0.02, 10),
    }


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"dataset": "20990101-000000-dead"}, "dataset"),
        ({"dataset": ""}, "dataset"),
        ({"train_epochs": "ten"}, "train_epochs"),
        ({"learning_rate": "0.1,fast"}, "learning_rate"),
        ({"batch_size": "0"}, "batch_size"),
        ({"solver_type": "MAGIC"}, "solver_type"),
        ({"model_name": ""}, "model_name"),
        ({"crop_size": "-3"}, "crop_size"),
        ({"standard_networks": "resnet9000"}, "standard_networks"),  # refused by the trainer
    ],
)
async def test_bad_model_input_is_a_400_naming_the_field(client, backend, changes, field) -> None:
    """Unknown dataset, bad numbers, bad choices, trainer refusals: 400 naming the field."""
    dataset_id = await built_dataset(client, backend)
    r = await client.post("/models/images/classification.json", data=form(dataset_id, **changes))
    assert r.status_code == 400, r.text
    assert field in r.json()["errors"]


async def test_model_json_follows_training(client, backend) -> None:
    """Progress, snapshots and Done appear in the model json."""
    dataset_id = await built_dataset(client, backend)
    model_id = (
        await client.post("/models/images/classification.json", data=form(dataset_id))
    ).json()["id"]
    await backend.start_training(model_id)
    await backend.progress(model_id, 1.0, 0.5)
    await backend.snapshot(model_id, 1.0)
    await backend.metric(model_id, 10, phase="val", loss=0.3, accuracy=0.75)

    async def progressed() -> dict | None:
        model = (await client.get(f"/models/{model_id}.json")).json()
        return model if model["snapshots"] == [1.0] and model["progress"] == 0.5 else None

    model = await until(progressed)
    assert model["status"] == "Running" and model["epoch"] == 1.0
    assert model["snapshot file"] == "snapshot-1.params"
    await backend.complete(model_id)
    await until(lambda: _status(client, model_id, "Done"))
    table = (await client.get("/completed_jobs.json")).json()
    item = next(m for m in table["models"] if m["id"] == model_id)
    assert item["accuracy (val) last"] == 0.75 and "accuracy (val)" in table["model_output_fields"]
    assert (await client.post(f"/models/{model_id}/abort")).status_code == 403


async def test_classify_one_returns_predictions(client, backend) -> None:
    """An uploaded image goes inline to inference; the answer is DIGITS's predictions list."""
    dataset_id = await built_dataset(client, backend)
    model_id = (
        await client.post("/models/images/classification.json", data=form(dataset_id))
    ).json()["id"]
    r = await client.post(
        "/models/images/classification/classify_one.json",
        params={"job_id": model_id},
        data={"snapshot_epoch": "2"},
        files={"image_file": ("x.png", png(), "image/png")},
    )
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == [["cat", 91.5], ["dog", 8.5]]
    sent = backend.classified[-1]
    assert sent.snapshot_epoch == 2.0 and sent.image.startswith(b"\x89PNG")
    page = await client.post(
        "/models/images/classification/classify_one",
        params={"job_id": model_id},
        files={"image_file": ("x.png", png(), "image/png")},
    )
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")


async def test_a_big_image_travels_through_the_object_store(client, backend) -> None:
    """Over 700 kB the command carries a blob reference instead of the bytes."""
    dataset_id = await built_dataset(client, backend)
    model_id = (
        await client.post("/models/images/classification.json", data=form(dataset_id))
    ).json()["id"]
    big = png(600, noise=True)
    assert len(big) > 700_000
    r = await client.post(
        "/models/images/classification/classify_one.json",
        data={"job_id": model_id},
        files={"image_file": ("big.png", big, "image/png")},
    )
    assert r.status_code == 200
    sent = backend.classified[-1]
    assert sent.image == b"" and sent.image_blob is not None and sent.image_blob.size == len(big)


async def test_classify_one_errors_are_400_or_404(client, backend) -> None:
    """No image: 400 image_file; an unreadable one (inference refuses): 400; unknown job: 404."""
    dataset_id = await built_dataset(client, backend)
    model_id = (
        await client.post("/models/images/classification.json", data=form(dataset_id))
    ).json()["id"]
    url = "/models/images/classification/classify_one.json"
    r = await client.post(url, data={"job_id": model_id})
    assert r.status_code == 400 and "image_file" in r.json()["errors"]
    r = await client.post(
        url,
        data={"job_id": model_id},
        files={"image_file": ("x.png", b"not an image", "image/png")},
    )
    assert r.status_code == 400 and "image_file" in r.json()["errors"]
    r = await client.post(
        url, data={"job_id": "nope"}, files={"image_file": ("x.png", png(), "image/png")}
    )
    assert r.status_code == 404
    r = await client.post(url, data={"job_id": model_id, "image_path": "/etc/passwd"})
    assert r.status_code == 400 and "image_path" in r.json()["errors"]


async def test_abort_a_running_model(client, backend) -> None:
    """ "Job aborted." and the status follows."""
    dataset_id = await built_dataset(client, backend)
    model_id = (
        await client.post("/models/images/classification.json", data=form(dataset_id))
    ).json()["id"]
    await backend.start_training(model_id)
    r = await client.post(f"/models/{model_id}/abort")
    assert (r.status_code, r.text) == (200, "Job aborted.")
    assert (await client.get(f"/models/{model_id}/status")).json()["status"] == "Aborted"


async def _status(client: httpx.AsyncClient, job_id: str, status: str) -> bool:
    return (await client.get(f"/jobs/{job_id}/status")).json().get("status") == status
