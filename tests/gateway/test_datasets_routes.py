"""DIGITS's dataset routes, driven the way DIGITS's own test-suite drove them."""

from __future__ import annotations

import httpx
import pytest

from tests.gateway.accounts import another_client, sign_in
from tests.gateway.fake_backend import FakeBackend
from tests.gateway.helpers import until

FORM = {
    "dataset_name": "pets",
    "folder_train": "/data/pets",
    "resize_width": "32",
    "resize_height": "28",
    "method": "folder",
    "backend": "lmdb",
}


async def create(client: httpx.AsyncClient, **changes: str) -> str:
    r = await client.post("/datasets/images/classification.json", data={**FORM, **changes})
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


async def test_create_answers_id_name_status_and_a_get_right_after_sees_it(client) -> None:
    """Read-your-writes: the JSON create answers {id, name, status}; the next GET shows the job."""
    r = await client.post("/datasets/images/classification.json", data=FORM)
    assert r.status_code == 200
    body = r.json()
    assert body == {"id": body["id"], "name": "pets", "status": "Initialized"}
    r = await client.get(f"/datasets/{body['id']}.json")
    assert r.status_code == 200
    job = r.json()
    assert (job["id"], job["name"], job["status"]) == (body["id"], "pets", "Initialized")
    assert job["CreateDbTasks"][0]["backend"] == "recordio"
    assert job["form"]["backend"] == "lmdb"
    status = (await client.get(f"/datasets/{body['id']}/status")).json()
    assert status == {
        "status": "Initialized",
        "type": "Image Classification Dataset",
        "name": "pets",
        "error": None,
    }


async def test_dataset_json_has_digits_keys_after_the_build(client, backend: FakeBackend) -> None:
    """ParseFolderTasks and CreateDbTasks carry the counts; width/height are not swapped."""
    dataset_id = await create(client)
    await backend.build(dataset_id)

    async def done() -> dict | None:
        job = (await client.get(f"/datasets/{dataset_id}.json")).json()
        return job if job["status"] == "Done" else None

    job = await until(done)
    assert job["ParseFolderTasks"] == [
        {
            "name": "Parse Folder (train/val)",
            "folder": "/data/pets",
            "label_count": 2,
            "train_count": 6,
            "val_count": 2,
            "test_count": 0,
        }
    ]
    train, val = job["CreateDbTasks"]
    assert train["name"] == "Create DB (train)" and train["entries"] == 6
    assert (train["image_width"], train["image_height"], train["image_channels"]) == (32, 28, 3)
    assert val["entries"] == 2 and train["distribution"] == {"cat": 3, "dog": 3}
    assert job["labels"] == ["cat", "dog"] and job["progress"] == 1.0
    assert [s for s, _ in job["status_history"]] == ["Initialized", "Running", "Done"]
    assert job["mean_image"] == f"/datasets/{dataset_id}/mean.jpg"
    summary = await client.get(
        "/datasets/summary", params={"job_id": dataset_id}, headers={"Accept": "application/json"}
    )
    assert summary.json()["entries"] == {"train": 6, "val": 2}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"folder_pct_val": "abc"}, "folder_pct_val"),
        ({"resize_width": "1.5"}, "resize_width"),
        ({"folder_train": ""}, "folder_train"),
        ({"dataset_name": ""}, "dataset_name"),
        ({"folder_pct_val": "80", "folder_pct_test": "30"}, "folder_pct_val"),
        ({"resize_channels": "2"}, "resize_channels"),
        ({"resize_mode": "stretch"}, "resize_mode"),
        (
            {"folder_train_min_per_class": "5", "folder_train_max_per_class": "2"},
            "folder_train_max_per_class",
        ),
        ({"folder_train": "relative/path"}, "folder_train"),  # refused by the datasets service
    ],
)
async def test_bad_input_is_a_400_naming_the_field(client, changes, field) -> None:
    """Non-numbers, missing fields, bad choices and service refusals: 400 errors body, no 500."""
    r = await client.post("/datasets/images/classification.json", data={**FORM, **changes})
    assert r.status_code == 400, r.text
    assert list(r.json()["errors"]) == [field]
    assert isinstance(r.json()["errors"][field][0], str)


async def test_create_requires_a_login(client) -> None:
    """Signed out: 401 JSON, and a `username` form field or query parameter signs nobody in."""
    client.cookies.clear()
    r = await client.post("/datasets/images/classification.json", data=FORM)
    assert r.status_code == 401 and r.json()["error"]["type"] == "Unauthorized"
    r = await client.post("/datasets/images/classification.json", data={**FORM, "username": "bob"})
    assert r.status_code == 401
    r = await client.post(
        "/datasets/images/classification.json", data=FORM, params={"username": "bob"}
    )
    assert r.status_code == 401


async def test_parameters_may_come_from_the_query_string(client) -> None:
    """DIGITS read every parameter from the query string too."""
    r = await client.post("/datasets/images/classification.json", params=FORM)
    assert r.status_code == 200 and r.json()["name"] == "pets"


async def test_the_form_variant_redirects_to_the_dataset_page(client) -> None:
    """Without .json the create answers 302 to /datasets/<id>."""
    r = await client.post("/datasets/images/classification", data=FORM)
    assert r.status_code == 302
    assert r.headers["location"].startswith("/datasets/2")


async def test_the_form_variant_redirects_to_login_without_a_user(client) -> None:
    """A page form without a login goes to /login?next=...."""
    client.cookies.clear()
    r = await client.post("/datasets/images/classification", data=FORM)
    assert r.status_code in (302, 303) and r.headers["location"].startswith("/login?next=")


async def test_abort_is_200_then_403_and_404_for_unknown(client) -> None:
    """ "Job aborted." while running; a second abort is 403; an unknown id is 404."""
    dataset_id = await create(client)
    r = await client.post(f"/datasets/{dataset_id}/abort")
    assert (r.status_code, r.text) == (200, "Job aborted.")
    assert (await client.get(f"/datasets/{dataset_id}/status")).json()["status"] == "Aborted"
    r = await client.post(f"/datasets/{dataset_id}/abort")
    assert r.status_code == 403
    assert (await client.post("/datasets/nope/abort")).status_code == 404
    r = await client.post("/jobs/nope/abort", headers={"Accept": "application/json"})
    assert r.json() == {"error": {"message": "Job not found", "type": "NotFound"}}


async def test_delete_is_refused_while_models_depend_on_the_dataset(client, backend) -> None:
    """403 with the dependent models named; after the model is gone, "Job deleted." then 404."""
    dataset_id = await create(client)
    await backend.build(dataset_id)
    await until(lambda: _status_is(client, dataset_id, "Done"))
    model = (
        await client.post(
            "/models/images/classification.json",
            data={"dataset": dataset_id, "model_name": "m", "standard_networks": "lenet"},
        )
    ).json()
    r = await client.delete(f"/datasets/{dataset_id}")
    assert r.status_code == 403 and "1 model(s) depend on it" in r.text
    assert (await client.delete(f"/models/{model['id']}")).text == "Job deleted."
    r = await client.delete(f"/datasets/{dataset_id}")
    assert (r.status_code, r.text) == (200, "Job deleted.")
    assert (await client.get(f"/datasets/{dataset_id}.json")).status_code == 404
    assert (await client.get(f"/jobs/{dataset_id}/status")).json() == {"error": "Job not found."}
    assert (await client.delete(f"/datasets/{dataset_id}")).status_code == 404


async def test_only_the_owner_may_delete_and_a_username_field_changes_nothing(client) -> None:
    """Bob may not delete alice's dataset, even naming her in the query or the form."""
    dataset_id = await create(client)
    async with another_client(client) as bob:
        await sign_in(bob, "bob")
        r = await bob.delete(f"/datasets/{dataset_id}", params={"username": "alice"})
        assert r.status_code == 403
        r = await bob.request("DELETE", f"/jobs/{dataset_id}", data={"username": "alice"})
        assert r.status_code == 403
    assert (await client.delete(f"/jobs/{dataset_id}")).text == "Job deleted."


async def test_a_model_id_is_not_a_dataset(client, backend) -> None:
    """/datasets/<model id> is 404; /jobs/<id> redirects to the right page."""
    dataset_id = await create(client)
    r = await client.get(f"/jobs/{dataset_id}")
    assert (r.status_code, r.headers["location"]) == (302, f"/datasets/{dataset_id}")
    assert (await client.get(f"/models/{dataset_id}.json")).status_code == 404


async def _status_is(client: httpx.AsyncClient, job_id: str, status: str) -> bool:
    return (await client.get(f"/jobs/{job_id}/status")).json().get("status") == status


@pytest.mark.parametrize(("shards", "stored"), [(0, "1 B"), (3, "3 B in 3 shards")])
async def test_each_db_task_tells_its_shard_count_and_stored_bytes(
    client, backend: FakeBackend, shards: int, stored: str
) -> None:
    """CreateDbTasks count a split's shards (1 for a build from before sharding) and sum their
    .rec sizes; the dataset page shows the size."""
    dataset_id = await create(client)
    await backend.build(dataset_id, shards=shards)

    async def done() -> dict | None:
        job = (await client.get(f"/datasets/{dataset_id}.json")).json()
        return job if job["status"] == "Done" else None

    train, val = (await until(done))["CreateDbTasks"]
    assert (train["shard_count"], train["rec_bytes"]) == (max(shards, 1), max(shards, 1))
    assert (val["shard_count"], val["rec_bytes"]) == (1, 1)
    page = (await client.get(f"/datasets/{dataset_id}", headers={"Accept": "text/html"})).text
    assert f'<td class="num">{stored}</td>' in page
