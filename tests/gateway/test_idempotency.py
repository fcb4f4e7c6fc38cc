"""Idempotency-Key at the gateway: sweeps, pages' hidden keys, a 503 that says nothing was
accepted, a restart (the services are faked; tests/datasets covers the real datasets service)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from digits_gateway.app import create_app
from digits_gateway.settings import Settings
from tests.gateway.accounts import sign_in
from tests.gateway.conftest import running, wait_ready
from tests.gateway.fake_backend import FakeBackend
from tests.gateway.test_models_routes import built_dataset, form

ROUTE = "/models/images/classification.json"
HIDDEN = re.compile(r'name="idempotency_key" value="([0-9a-f]{32})"')


async def test_retried_sweep_returns_the_same_jobs(client, backend) -> None:
    """A sweep (two learning rates) retried under its key answers with the same two jobs."""
    dataset_id = await built_dataset(client, backend)
    values = form(dataset_id, learning_rate="0.01,0.02")
    key = {"Idempotency-Key": "sweep-1"}
    first = await client.post(ROUTE, data=values, headers=key)
    again = await client.post(ROUTE, data=values, headers=key)
    assert first.status_code == again.status_code == 200, (first.text, again.text)
    ids = sorted(j["id"] for j in first.json()["jobs"])
    assert len(ids) == 2
    assert sorted(j["id"] for j in again.json()["jobs"]) == ids
    index = (await client.get("/index.json")).json()
    assert sorted(m["id"] for m in index["models"]) == ids


async def test_key_from_a_create_reused_for_an_abort_is_422(client, backend) -> None:
    """A key names one request: reused for another command, it is refused."""
    dataset_id = await built_dataset(client, backend)
    key = {"Idempotency-Key": "one-request"}
    model = (await client.post(ROUTE, data=form(dataset_id), headers=key)).json()
    r = await client.post(f"/models/{model['id']}/abort", headers=key)
    assert r.status_code == 422, r.text


async def test_job_pages_carry_a_key_for_abort_and_delete(client, backend) -> None:
    """A job page's abort form and delete button carry a fresh key (the UI sends it as the
    Idempotency-Key header); the new-model form carries one too."""
    dataset_id = await built_dataset(client, backend)
    page = (await client.get(f"/datasets/{dataset_id}")).text
    assert HIDDEN.search(page)
    assert re.search(r'id="delete-button" data-idempotency-key="[0-9a-f]{32}"', page)
    assert HIDDEN.search((await client.get("/models/images/classification/new")).text)


async def test_503_without_an_answer_says_not_accepted(client, backend: FakeBackend) -> None:
    """The service behind a create does not answer: 503 saying nothing was accepted and that a
    retry is safe, with Retry-After."""
    await backend.services[0].stop()  # the datasets service (first started)
    r = await client.post(
        "/api/v1/datasets/",
        json={"name": "pets", "folder_train": "/data/pets"},
        headers={"Idempotency-Key": "k"},
    )
    assert r.status_code == 503, r.text
    assert int(r.headers["retry-after"]) > 0
    error = r.json()["error"]
    assert error["accepted"] is False and "id" not in error
    assert "safe to retry" in error["message"]


async def test_a_retry_after_a_gateway_restart_gets_the_first_answer(
    settings: Settings, backend: FakeBackend
) -> None:
    """The record of a key is the read model (projected from the events): a new gateway, its
    read model rebuilt from scratch, still answers a retry with the first job."""
    body = {"name": "pets", "folder_train": "/data/pets"}
    key = {"Idempotency-Key": "survives"}
    async with running(create_app(settings)) as client:
        await wait_ready(client)
        await sign_in(client, "alice")
        first = await client.post("/api/v1/datasets/", json=body, headers=key)
    assert first.status_code == 202, first.text
    readmodel = settings.readmodel_path
    readmodel.unlink()  # the new gateway rebuilds its read model from the streams
    Path(f"{readmodel}.wal").unlink(missing_ok=True)
    async with running(create_app(settings)) as client:
        await wait_ready(client)
        await sign_in(client, "alice")
        again = await client.post("/api/v1/datasets/", json=body, headers=key)
        listed = (await client.get("/api/v1/datasets/")).json()["jobs"]
    assert again.status_code == 202, again.text
    assert again.json() == first.json()
    assert [j["id"] for j in listed] == [first.json()["id"]]


async def test_page_form_values_do_not_keep_the_key(client, backend) -> None:
    """The saved form (replayed by clone) leaves the key out: a clone is another request."""
    dataset_id = await built_dataset(client, backend)
    values = {**form(dataset_id), "idempotency_key": "form-key"}
    model = (await client.post(ROUTE, data=values)).json()
    saved = (await client.get(f"/models/{model['id']}.json")).json()
    assert "idempotency_key" not in saved.get("form", {})
    clone = await client.post(ROUTE, data={"clone": model["id"], "idempotency_key": "clone-key"})
    assert clone.status_code == 200, clone.text
    assert clone.json()["id"] != model["id"]


async def test_without_a_key_nothing_changes(client: httpx.AsyncClient, backend) -> None:
    """No key: two creates make two jobs, as before."""
    dataset_id = await built_dataset(client, backend)
    a = (await client.post(ROUTE, data=form(dataset_id))).json()
    b = (await client.post(ROUTE, data=form(dataset_id))).json()
    assert a["id"] != b["id"]
