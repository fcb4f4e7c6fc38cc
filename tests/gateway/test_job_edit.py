"""Rename and notes (`PUT /jobs/<id>`, `PATCH /api/v1/jobs/<id>`) and a model's raw log."""

from __future__ import annotations

import httpx

from digits_gateway.readmodel import queries
from digits_gateway.readmodel.db import ReadModel
from digits_gateway.readmodel.projectors import datasets as dataset_projector
from digits_proto import subjects
from digits_proto.datasets import DatasetCreated, DatasetEdited, DatasetSpec
from digits_proto.runtime import put_bytes
from tests.gateway.accounts import another_client, sign_in
from tests.gateway.fake_backend import FakeBackend
from tests.gateway.helpers import until
from tests.gateway.test_models_routes import built_dataset, form

JSON = {"Accept": "application/json"}


async def test_put_renames_a_dataset_and_sets_notes_everywhere(client, backend) -> None:
    """DIGITS's reply text; the JSON, the index, the page and the clone form follow."""
    dataset_id = await built_dataset(client, backend)
    r = await client.put(
        f"/jobs/{dataset_id}", data={"job_name": "  kittens ", "job_notes": "from the shelter"}
    )
    assert (r.status_code, r.text) == (200, "Image Classification Dataset updated.")
    assert r.headers["content-type"].startswith("text/plain")
    data = (await client.get(f"/datasets/{dataset_id}.json")).json()
    assert (data["name"], data["notes"], data["status"]) == ("kittens", "from the shelter", "Done")
    assert data["form"]["dataset_name"] == "kittens"
    index = (await client.get("/index.json")).json()
    assert [d["name"] for d in index["datasets"]] == ["kittens"]
    page = (await client.get(f"/datasets/{dataset_id}")).text
    assert "kittens" in page and "from the shelter" in page and 'id="job-notes"' in page

    r = await client.put(f"/jobs/{dataset_id}", data={"job_notes": ""})
    assert r.status_code == 200
    data = (await client.get(f"/datasets/{dataset_id}.json")).json()
    assert (data["name"], data["notes"]) == ("kittens", "")


async def test_put_renames_a_running_model_without_touching_its_status(client, backend) -> None:
    """A model in training takes a new name (JSON body too); it stays Running."""
    dataset_id = await built_dataset(client, backend)
    model = (await client.post("/models/images/classification.json", data=form(dataset_id))).json()
    await backend.start_training(model["id"])
    r = await client.put(f"/jobs/{model['id']}", json={"job_name": "net v2"})
    assert (r.status_code, r.text) == (200, "Image Classification Model updated.")
    data = (await client.get(f"/models/{model['id']}.json")).json()
    assert (data["name"], data["status"]) == ("net v2", "Running")
    assert data["form"]["model_name"] == "net v2"


async def test_put_refusals_follow_digits(client, backend) -> None:
    """404 unknown, 400 naming job_name when blank, 403 for another user, 401 logged out."""
    dataset_id = await built_dataset(client, backend)
    r = await client.put("/jobs/20990101-000000-beef", data={"job_name": "x"}, headers=JSON)
    assert r.status_code == 404
    r = await client.put(f"/jobs/{dataset_id}", data={"job_name": "   "}, headers=JSON)
    assert r.status_code == 400 and r.json()["errors"]["job_name"] == ["name cannot be blank"]
    async with another_client(client) as bob:
        await sign_in(bob, "bob")
        r = await bob.put(f"/jobs/{dataset_id}", data={"job_name": "x", "username": "alice"})
        assert r.status_code == 403
    client.cookies.clear()
    r = await client.put(
        f"/jobs/{dataset_id}", data={"job_name": "x", "username": "alice"}, headers=JSON
    )
    assert r.status_code == 401
    await sign_in(client, "alice")
    data = (await client.get(f"/datasets/{dataset_id}.json")).json()
    assert data["name"] == "pets"


async def test_api_patch_edits_a_job_and_names_its_own_fields(client, backend) -> None:
    """PATCH /api/v1/jobs/<id> answers the job's name, status and notes; 400 names `name`."""
    dataset_id = await built_dataset(client, backend)
    r = await client.patch(f"/api/v1/jobs/{dataset_id}", json={"name": "cats", "notes": "n"})
    assert r.status_code == 200, r.text
    assert r.json() == {
        "id": dataset_id,
        "name": "cats",
        "status": "Done",
        "notes": "n",
        "tags": [],
    }
    r = await client.patch(f"/api/v1/jobs/{dataset_id}", json={"name": ""})
    assert r.status_code == 400 and "name" in r.json()["errors"]
    r = await client.patch(f"/api/v1/jobs/{dataset_id}", json={"colour": "red"})
    assert r.status_code == 400
    r = await client.patch("/api/v1/jobs/20990101-000000-beef", json={"name": "x"})
    assert r.status_code == 404


async def test_model_log_is_served_as_text_once_the_trainer_uploaded_it(
    client: httpx.AsyncClient, backend: FakeBackend, js, nc
) -> None:
    """404 with a reason before any upload; then the bucket's `<id>/train.log` as text/plain;
    while a trainer runs the job, its live answer wins (an empty one sends us to the bucket)."""
    dataset_id = await built_dataset(client, backend)
    model = (await client.post("/models/images/classification.json", data=form(dataset_id))).json()
    r = await client.get(f"/models/{model['id']}/log")
    assert r.status_code == 404 and "not started training" in r.text
    text = "2026-01-01 00:00:00 [trainer  ] attempt 1\nepoch 1 loss 0.5 ✓\n"
    await put_bytes(js, subjects.BUCKET_MODELS, f"{model['id']}/train.log", text.encode())
    r = await client.get(f"/models/{model['id']}/log")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert r.text == text
    assert (await client.get(f"/models/{dataset_id}/log")).status_code == 404

    await backend.start_training(model["id"])

    async def running() -> bool:
        status = await client.get(f"/models/{model['id']}/status")
        return status.json()["status"] == "Running"

    await until(running)  # the live read is asked only of a running job
    answers = [b"live line 1\nlive line 2\n", b""]

    async def trainer_answers(msg) -> None:
        await msg.respond(answers.pop(0))

    sub = await nc.subscribe(subjects.model_log(model["id"]), cb=trainer_answers)
    await nc.flush()  # the server knows the subscription before the gateway asks
    r = await client.get(f"/models/{model['id']}/log")
    assert r.text == "live line 1\nlive line 2\n"
    r = await client.get(f"/models/{model['id']}/log")  # too big to answer live
    assert r.text == text
    await sub.unsubscribe()


def test_projecting_an_edit_updates_name_notes_form_and_tells_the_pages(tmp_path) -> None:
    """DatasetEdited: name, notes and the clone form change; a status event carries the new
    name; a repeat or an edit of an unknown job changes nothing more."""
    db = ReadModel(tmp_path / "rm.duckdb")
    created = DatasetCreated(
        dataset_id="d1",
        name="old",
        spec=DatasetSpec(folder_train="/x"),
        form={"dataset_name": "old", "folder_train": "/x"},
    )
    edited = DatasetEdited(dataset_id="d1", name="new", notes="n")
    with db.transaction() as tx:
        dataset_projector.apply(tx, [(1, created)])
        live = dataset_projector.apply(tx, [(2, edited), (3, DatasetEdited(dataset_id="zz"))])
        dataset_projector.apply(tx, [(4, DatasetEdited(dataset_id="d1", notes=""))])
    with db.cursor() as cur:
        job = queries.get_job(cur, "d1")
    db.close()
    assert job is not None and (job.name, job.notes, job.status) == ("new", "", "Initialized")
    assert job.form == {"dataset_name": "new", "folder_train": "/x"}
    assert [(e.kind, e.data["name"], e.data["status"]) for e in live] == [
        ("status", "new", "Initialized")
    ]
