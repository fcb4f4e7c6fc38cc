"""`/api/v1`: the native JSON API over the same commands and read model."""

from __future__ import annotations

import io

from PIL import Image

from tests.gateway.helpers import until


def png() -> bytes:
    out = io.BytesIO()
    Image.new("L", (4, 4), 128).save(out, format="PNG")
    return out.getvalue()


async def test_create_dataset_is_202_and_listed(client) -> None:
    """POST answers 202 {id, name, status}; GET lists and shows it."""
    r = await client.post(
        "/api/v1/datasets", json={"name": "pets", "folder_train": "/data/x", "resize_channels": 1}
    )
    assert r.status_code == 202
    ref = r.json()
    assert ref["name"] == "pets" and ref["status"] == "Initialized"
    listed = (await client.get("/api/v1/datasets")).json()["jobs"]
    assert [j["id"] for j in listed] == [ref["id"]] and listed[0]["type"] == "dataset"
    shown = (await client.get(f"/api/v1/datasets/{ref['id']}")).json()
    assert shown["spec"]["resize_channels"] == 1
    assert (await client.get("/api/v1/jobs")).json()["jobs"][0]["id"] == ref["id"]


async def test_bad_bodies_are_400_naming_the_field(client) -> None:
    """Wrong types, unknown and missing fields, and domain checks all name their field."""
    r = await client.post(
        "/api/v1/datasets", json={"name": "p", "folder_train": "/d", "resize_width": "wide"}
    )
    assert r.status_code == 400 and "resize_width" in r.json()["errors"]
    r = await client.post(
        "/api/v1/datasets", json={"name": "p", "folder_train": "/d", "colour": "red"}
    )
    assert r.status_code == 400 and "colour" in r.json()["errors"]
    r = await client.post("/api/v1/datasets", json={"folder_train": "/d"})
    assert r.status_code == 400 and "name" in r.json()["errors"]
    r = await client.post(
        "/api/v1/datasets", json={"name": "p", "folder_train": "/d", "folder_pct_val": 101}
    )
    assert r.status_code == 400 and "folder_pct_val" in r.json()["errors"]
    r = await client.post("/api/v1/models", json={"name": "m", "dataset_id": "missing"})
    assert r.status_code == 400 and "dataset_id" in r.json()["errors"]
    r = await client.post("/api/v1/datasets", json={"name": "", "folder_train": "/d"})
    assert r.status_code == 400 and list(r.json()["errors"]) == ["name"]


async def test_mutations_need_a_user(client) -> None:
    """Signed out: 401, and a `username` in the JSON body does not sign anyone in."""
    client.cookies.clear()
    r = await client.post("/api/v1/datasets", json={"name": "p", "folder_train": "/d"})
    assert r.status_code == 401
    r = await client.post(
        "/api/v1/datasets", json={"name": "p", "folder_train": "/d", "username": "alice"}
    )
    assert r.status_code == 401


async def test_model_lifecycle_metrics_classify_abort_delete(client, backend) -> None:
    """Create a model, read its metrics, classify an image, abort it, delete it."""
    ds = (await client.post("/api/v1/datasets", json={"name": "p", "folder_train": "/d"})).json()
    await backend.build(ds["id"])

    async def built() -> bool:
        return (await client.get(f"/api/v1/datasets/{ds['id']}")).json()["status"] == "Done"

    await until(built)
    r = await client.post(
        "/api/v1/models",
        json={"name": "m", "dataset_id": ds["id"], "network": "lenet", "learning_rate": 0.1},
    )
    assert r.status_code == 202
    model_id = r.json()["id"]
    shown = (await client.get(f"/api/v1/models/{model_id}")).json()
    assert shown["spec"]["learning_rate"] == 0.1 and shown["network"] == "lenet"
    await backend.start_training(model_id)
    for i in range(3):
        await backend.metric(model_id, i)

    async def points() -> list:
        return (await client.get(f"/api/v1/models/{model_id}/metrics")).json()["points"]

    got = await until(lambda: _full(points, 3))
    assert [p["iteration"] for p in got] == [0, 1, 2]
    later = (
        await client.get(f"/api/v1/models/{model_id}/metrics", params={"after_seq": got[0]["seq"]})
    ).json()["points"]
    assert [p["iteration"] for p in later] == [1, 2]
    r = await client.post(
        f"/api/v1/models/{model_id}/classify", files={"image_file": ("a.png", png(), "image/png")}
    )
    assert r.json()["predictions"] == [["cat", 91.5], ["dog", 8.5]]
    r = await client.post(f"/api/v1/models/{model_id}/abort")
    assert r.status_code == 200 and r.json()["status"] == "Aborted"
    r = await client.delete(f"/api/v1/models/{model_id}")
    assert r.json() == {"id": model_id, "deleted": True}
    assert (await client.get(f"/api/v1/models/{model_id}")).status_code == 404


async def test_openapi_schema_is_served(client) -> None:
    """Litestar serves the OpenAPI document at /schema."""
    r = await client.get("/schema/openapi.json")
    assert r.status_code == 200
    assert "/api/v1/datasets" in r.json()["paths"]


async def _full(points, count: int) -> list | None:
    got = await points()
    return got if len(got) >= count else None
