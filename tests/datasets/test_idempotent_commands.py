"""Idempotency-Key through the gateway and the real datasets service: a retry gets the first
answer, never a second job."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from nats.js import JetStreamContext

from digits_datasets.settings import Settings
from digits_gateway.app import create_app
from digits_proto import codec, new_job_id, subjects
from digits_proto.base import Principal, Role
from digits_proto.datasets import CreateDataset, DatasetCreated, DatasetSpec
from digits_proto.replies import Accepted, Rejected
from digits_proto.runtime import EventStore, request
from tests.gateway.accounts import another_client, seed_accounts, sign_in
from tests.gateway.conftest import make_settings, running, wait_ready
from tests.gateway.fake_backend import FakeBackend

from .conftest import make_folder
from .test_archive import classes, make_zip

API = "/api/v1/datasets/"


@pytest.fixture
async def gateway(
    service: Settings, nc, js, nats_url: str, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway (short read-your-writes wait) with the real datasets service, as alice."""
    fake = FakeBackend(nc, js)
    await fake.start(tuple(s for s in subjects.BACKEND_SERVICES if s != subjects.SERVICE_DATASETS))
    try:
        await seed_accounts(js)
        settings = make_settings(nats_url, tmp_path / "gw", read_your_writes_timeout=1.0)
        async with running(create_app(settings)) as client:
            await wait_ready(client, timeout=20)
            await sign_in(client, "alice")
            yield client
    finally:
        await fake.stop()


@pytest.fixture
def body(images: Path) -> dict[str, Any]:
    """A small folder dataset's `/api/v1` body."""
    folder = make_folder(images / "pets", {"a_cat": 3, "b": 3})
    return {"name": "pets", "folder_train": str(folder), "resize_width": 8, "resize_height": 8}


async def dataset_aggregates(js: JetStreamContext) -> dict[str, int]:
    """{aggregate subject: event count} on the datasets stream: how many datasets exist."""
    info = await js.stream_info(subjects.STREAM_DATASETS, subjects_filter=">")
    return dict(info.state.subjects or {})


async def aborted_events(js: JetStreamContext, dataset_id: str) -> list[str]:
    """The types of the dataset's events that record an abort."""
    store = EventStore(js, subjects.STREAM_DATASETS, codec.dataset_events)
    events, _ = await store.load(subjects.dataset_events(dataset_id))
    return [type(e).__name__ for e in events if type(e).__name__ == "DatasetAborted"]


async def test_retried_create_returns_the_first_dataset(
    gateway: httpx.AsyncClient, js: JetStreamContext, body: dict[str, Any]
) -> None:
    """The same key twice: the same answer (202, same id), and the system holds one dataset."""
    key = {"Idempotency-Key": "create-pets-1"}
    first = await gateway.post(API, json=body, headers=key)
    again = await gateway.post(API, json=body, headers=key)
    assert first.status_code == again.status_code == 202, (first.text, again.text)
    assert again.json() == first.json()
    assert len(await dataset_aggregates(js)) == 1
    listed = (await gateway.get(API)).json()["jobs"]
    assert [j["id"] for j in listed] == [first.json()["id"]]


async def test_concurrent_retries_make_one_dataset(
    gateway: httpx.AsyncClient, js: JetStreamContext, body: dict[str, Any]
) -> None:
    """Retries racing the first request (none visible in the read model yet) still make one
    dataset: the service's JetStream deduplication answers them with the first job."""
    key = {"Idempotency-Key": "race"}
    answers = await asyncio.gather(*(gateway.post(API, json=body, headers=key) for _ in range(4)))
    assert {r.status_code for r in answers} == {202}, [r.text for r in answers]
    assert len({r.json()["id"] for r in answers}) == 1
    assert len(await dataset_aggregates(js)) == 1


async def test_service_answers_a_repeated_command_with_the_first_dataset(
    service: Settings, nc, js: JetStreamContext, images: Path
) -> None:
    """Sent twice straight to the service, a keyed CreateDataset names the first dataset; the
    same key with another request digest is refused with 422 naming the key."""
    folder = make_folder(images / "pets", {"a_cat": 3, "b": 3})
    alice = Principal(username="alice", role=Role.USER)
    command = CreateDataset(
        name="pets",
        spec=DatasetSpec(folder_train=str(folder), resize_width=8, resize_height=8),
        principal=alice,
        idempotency_key="k1",
        request_digest="d1",
    )
    replies = []
    for sent in (command, command):
        raw, rejected = await request(nc, subjects.CMD_DATASETS_CREATE, sent, timeout=10)
        assert rejected is None, rejected
        replies.append(codec.command_reply.decode(raw))
    assert all(isinstance(r, Accepted) for r in replies)
    assert replies[0].id == replies[1].id
    assert len(await dataset_aggregates(js)) == 1
    other = CreateDataset(**{**_fields(command), "request_digest": "d2"})
    _, rejected = await request(nc, subjects.CMD_DATASETS_CREATE, other, timeout=10)
    assert isinstance(rejected, Rejected)
    assert (rejected.code, rejected.field) == (422, "Idempotency-Key")


def _fields(command: CreateDataset) -> dict[str, Any]:
    return {f: getattr(command, f) for f in command.__struct_fields__}


async def test_same_key_from_another_user_is_another_dataset(
    gateway: httpx.AsyncClient, js: JetStreamContext, body: dict[str, Any]
) -> None:
    """Keys are scoped to the principal: bob's key equal to alice's makes bob's own dataset."""
    key = {"Idempotency-Key": "shared-key"}
    mine = await gateway.post(API, json=body, headers=key)
    async with another_client(gateway) as bob:
        await sign_in(bob, "bob")
        his = await bob.post(API, json=body, headers=key)
        his_again = await bob.post(API, json=body, headers=key)
    assert mine.status_code == his.status_code == 202, (mine.text, his.text)
    assert mine.json()["id"] != his.json()["id"]
    assert his_again.json() == his.json()
    assert len(await dataset_aggregates(js)) == 2


async def test_key_reused_for_another_request_is_422(
    gateway: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    """The same key with another body is refused (422), and creates nothing."""
    key = {"Idempotency-Key": "k-body"}
    first = await gateway.post(API, json=body, headers=key)
    assert first.status_code == 202, first.text
    other = await gateway.post(API, json={**body, "name": "other"}, headers=key)
    assert other.status_code == 422, other.text
    assert other.json()["error"]["type"] == "UnprocessableEntity"
    assert "Idempotency-Key" in other.json()["error"]["message"]
    assert len((await gateway.get(API)).json()["jobs"]) == 1


@pytest.mark.parametrize(
    ("key", "why"),
    [("k" * 256, "at most 255"), ("tab\there", "printable"), ("   ", "non-blank")],
)
async def test_a_bad_key_is_a_400_naming_the_header(
    gateway: httpx.AsyncClient, body: dict[str, Any], key: str, why: str
) -> None:
    """A key too long, with a control character or blank: 400 naming Idempotency-Key."""
    r = await gateway.post(API, json=body, headers={"Idempotency-Key": key})
    assert r.status_code == 400, r.text
    assert why in r.json()["errors"]["Idempotency-Key"][0]
    assert (await gateway.get(API)).json()["jobs"] == []


async def _waiting_dataset(js: JetStreamContext, owner: str = "alice") -> str:
    """A dataset accepted but never queued (no ticket): it stays Initialized, abortable."""
    dataset_id = new_job_id()
    created = DatasetCreated(
        dataset_id=dataset_id,
        name="waiting",
        username=owner,
        spec=DatasetSpec(folder_train="/nowhere"),
        actor=owner,
    )
    store = EventStore(js, subjects.STREAM_DATASETS, codec.dataset_events)
    await store.append(subjects.dataset_events(dataset_id), [created], 0)
    return dataset_id


async def _visible(client: httpx.AsyncClient, job_id: str) -> None:
    async with asyncio.timeout(10):
        while (await client.get(f"{API}{job_id}")).status_code != 200:
            await asyncio.sleep(0.05)


async def test_retried_abort_returns_the_first_answer(
    gateway: httpx.AsyncClient, js: JetStreamContext
) -> None:
    """An abort retried under its key answers as the first did (the job has ended since); an
    abort without a key, or under another key, is refused as before; one abort event."""
    dataset_id = await _waiting_dataset(js)
    await _visible(gateway, dataset_id)
    key = {"Idempotency-Key": "abort-1"}
    first = await gateway.post(f"{API}{dataset_id}/abort", headers=key)
    again = await gateway.post(f"{API}{dataset_id}/abort", headers=key)
    assert first.status_code == again.status_code == 200, (first.text, again.text)
    assert again.json() == first.json()
    assert first.json()["status"] == "Aborted"
    plain = await gateway.post(f"{API}{dataset_id}/abort")
    other = await gateway.post(f"{API}{dataset_id}/abort", headers={"Idempotency-Key": "abort-2"})
    assert plain.status_code == other.status_code == 403, (plain.text, other.text)
    assert await aborted_events(js, dataset_id) == ["DatasetAborted"]
    # The DIGITS route with the web UI's hidden field: the same.
    digits = await gateway.post(
        f"/datasets/{dataset_id}/abort", data={"idempotency_key": "abort-1"}
    )
    assert (digits.status_code, digits.text) == (200, "Job aborted.")


async def test_retried_delete_returns_the_first_answer(
    gateway: httpx.AsyncClient, js: JetStreamContext
) -> None:
    """A delete whose answer was lost, retried under a key, answers as the delete did; without
    a key the job is gone (404)."""
    dataset_id = await _waiting_dataset(js)
    await _visible(gateway, dataset_id)
    key = {"Idempotency-Key": "delete-1"}
    first = await gateway.delete(f"{API}{dataset_id}", headers=key)
    again = await gateway.delete(f"{API}{dataset_id}", headers=key)
    assert first.status_code == again.status_code == 200, (first.text, again.text)
    assert again.json() == first.json()
    assert (await gateway.delete(f"{API}{dataset_id}")).status_code == 404


HIDDEN = re.compile(r'name="idempotency_key" value="([0-9a-f]{32})"')


async def test_form_sent_twice_makes_one_dataset(
    gateway: httpx.AsyncClient, js: JetStreamContext, images: Path
) -> None:
    """The new-dataset page carries a fresh hidden key per render; the same form posted twice
    (a double submit) redirects both times to the one dataset it made."""
    page = (await gateway.get("/datasets/images/classification/new")).text
    keys = HIDDEN.findall(page)
    again = HIDDEN.findall((await gateway.get("/datasets/images/classification/new")).text)
    assert len(keys) == 1 and len(again) == 1 and keys != again
    folder = make_folder(images / "pets", {"a_cat": 3, "b": 3})
    form = {
        "dataset_name": "pets",
        "method": "folder",
        "folder_train": str(folder),
        "resize_width": "8",
        "resize_height": "8",
        "idempotency_key": keys[0],
    }
    first = await gateway.post("/datasets/images/classification", data=form)
    second = await gateway.post("/datasets/images/classification", data=form)
    assert first.status_code == second.status_code == 302, (first.text, second.text)
    assert first.headers["location"] == second.headers["location"]
    assert len(await dataset_aggregates(js)) == 1


async def test_503_says_the_create_was_accepted_and_names_the_job(
    gateway: httpx.AsyncClient, js: JetStreamContext, body: dict[str, Any]
) -> None:
    """With the projection stopped, a create answers 503 naming the job it accepted (with
    Retry-After); the retry under the same key names the same job; one dataset in all."""
    gw = gateway._transport.app.state.gateway  # type: ignore[attr-defined]
    await gw.projection.stop()
    key = {"Idempotency-Key": "lagging"}
    first = await gateway.post(API, json=body, headers=key)
    assert first.status_code == 503, first.text
    assert first.headers["retry-after"]
    error = first.json()["error"]
    assert error["accepted"] is True and error["id"]
    assert "accepted" in error["message"].lower() and "Idempotency-Key" in error["message"]
    again = await gateway.post(API, json=body, headers=key)
    assert again.status_code == 503 and again.json()["error"]["id"] == error["id"]
    assert list(await dataset_aggregates(js)) == [subjects.dataset_events(error["id"])]


async def test_an_upload_accepted_behind_a_503_still_builds(
    gateway: httpx.AsyncClient, js: JetStreamContext
) -> None:
    """A 503 after the service accepted an upload dataset leaves its archive in place (the
    gateway deleted it before, under a build that may not have read it yet): the build
    finishes, the archive stays with its dataset, and the retry names the same job."""
    gw = gateway._transport.app.state.gateway  # type: ignore[attr-defined]
    await gw.projection.stop()
    files = {"upload_archive": ("pets.zip", make_zip(classes(3)), "application/zip")}
    form = {"dataset_name": "d", "method": "upload", "resize_width": "8", "resize_height": "8"}
    key = {"Idempotency-Key": "upload-503"}
    r = await gateway.post(
        "/datasets/images/classification.json", data=form, files=files, headers=key
    )
    assert r.status_code == 503 and r.json()["error"]["accepted"] is True, r.text
    dataset_id = r.json()["error"]["id"]
    store = EventStore(js, subjects.STREAM_DATASETS, codec.dataset_events)
    async with asyncio.timeout(60):
        while True:
            events, _ = await store.load(subjects.dataset_events(dataset_id))
            ended = [type(e).__name__ for e in events if type(e).__name__ in ENDED]
            if ended:
                break
            await asyncio.sleep(0.1)
    assert ended == ["DatasetBuilt"], events[-1]
    archive = events[0].spec.upload_archive
    uploads = await js.object_store(subjects.BUCKET_UPLOADS)
    assert (await uploads.get_info(archive.name)).size == archive.size  # kept for its dataset
    files = {"upload_archive": ("pets.zip", make_zip(classes(3)), "application/zip")}
    again = await gateway.post(
        "/datasets/images/classification.json", data=form, files=files, headers=key
    )
    assert again.json()["error"]["id"] == dataset_id


ENDED = ("DatasetBuilt", "DatasetFailed", "DatasetAborted")
