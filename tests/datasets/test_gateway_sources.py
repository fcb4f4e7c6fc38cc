"""Every source method through the gateway's DIGITS route and the real datasets service."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from digits_datasets.settings import Settings
from digits_gateway.app import create_app
from digits_proto import subjects
from tests.gateway.accounts import seed_accounts, sign_in
from tests.gateway.conftest import make_settings, running, wait_ready
from tests.gateway.fake_backend import FakeBackend

from .conftest import make_folder
from .test_archive import classes, make_tar, make_zip
from .test_textfile import write_lists

ROUTE = "/datasets/images/classification.json"


@pytest.fixture
async def gateway(
    service: Settings, nc, js, nats_url: str, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway with the real datasets service; the other services faked."""
    fake = FakeBackend(nc, js)
    await fake.start(tuple(s for s in subjects.BACKEND_SERVICES if s != subjects.SERVICE_DATASETS))
    try:
        await seed_accounts(js)
        async with running(create_app(make_settings(nats_url, tmp_path / "gw"))) as client:
            await wait_ready(client, timeout=20)
            await sign_in(client, "alice")
            yield client
    finally:
        await fake.stop()


async def finished(client: httpx.AsyncClient, job_id: str) -> dict:
    """The dataset's JSON once it is Done or Error."""
    async with asyncio.timeout(60):
        while True:
            body = (await client.get(f"/datasets/{job_id}.json")).json()
            if body["status"] in ("Done", "Error", "Aborted"):
                return body
            await asyncio.sleep(0.1)


BASE = {"dataset_name": "d", "resize_width": "8", "resize_height": "8", "folder_pct_val": "0"}


async def test_browser_upload_of_a_zip_builds_a_dataset(gateway: httpx.AsyncClient) -> None:
    """A multipart zip upload becomes a built dataset; the JSON says recordio for lmdb."""
    files = {"upload_archive": ("pets.zip", make_zip(classes(4)), "application/zip")}
    r = await gateway.post(ROUTE, data={**BASE, "method": "upload", "backend": "lmdb"}, files=files)
    assert r.status_code == 200, r.text
    body = await finished(gateway, r.json()["id"])
    assert body["status"] == "Done", body
    assert body["labels"] == ["cats", "dogs"]
    task = body["CreateDbTasks"][0]
    assert (task["entries"], task["backend"], task["class_error_counts"]) == (8, "recordio", [0, 0])
    assert (task["image_width"], task["image_height"]) == (8, 8)


async def test_hostile_upload_ends_in_error_naming_the_member(gateway: httpx.AsyncClient) -> None:
    """A tar.gz with a `../` member is refused by the build, which says why."""
    evil = make_tar([*classes().items(), ("../x.png", b"x")])
    files = {"upload_archive": ("evil.tgz", evil, "application/gzip")}
    r = await gateway.post(ROUTE, data={**BASE, "method": "upload"}, files=files)
    body = await finished(gateway, r.json()["id"])
    assert body["status"] == "Error" and "../x.png" in body["error"]


async def test_textfile_uploads_build_and_missing_files_are_400s(
    gateway: httpx.AsyncClient, images: Path
) -> None:
    """Uploaded lists and labels file build; a missing labels upload is a 400 naming it."""
    folder, lists = write_lists(images)
    files = {
        "textfile_train_images": ("train.txt", lists["train"].read_bytes(), "text/plain"),
        "textfile_val_images": ("val.txt", lists["val"].read_bytes(), "text/plain"),
        "textfile_labels_file": ("labels.txt", lists["labels"].read_bytes(), "text/plain"),
    }
    data = {
        **BASE,
        "method": "textfile",
        "textfile_train_folder": str(folder),
        "textfile_val_folder": str(folder),
    }
    r = await gateway.post(ROUTE, data=data, files=files)
    assert r.status_code == 200, r.text
    body = await finished(gateway, r.json()["id"])
    assert body["status"] == "Done", body
    assert [t["entries"] for t in body["CreateDbTasks"]] == [8, 4]
    r = await gateway.post(
        ROUTE, data=data, files={k: v for k, v in files.items() if "labels" not in k}
    )
    assert r.status_code == 400 and "textfile_labels_file" in r.json()["errors"]
    r = await gateway.post(ROUTE, data={**BASE, "method": "upload"})
    assert r.status_code == 400 and "upload_archive" in r.json()["errors"]


async def test_separate_val_folder_shows_its_own_parse_task(
    gateway: httpx.AsyncClient, images: Path
) -> None:
    """has_val_folder: the JSON lists a second ParseFolderTasks entry with the val count."""
    train = make_folder(images / "tr", {"a_cat": 4, "b": 4})
    val = make_folder(images / "va", {"a_cat": 2, "b": 2})
    data = {**BASE, "folder_train": str(train), "has_val_folder": "1", "folder_val": str(val)}
    r = await gateway.post(ROUTE, data=data)
    assert r.status_code == 200, r.text
    body = await finished(gateway, r.json()["id"])
    tasks = body["ParseFolderTasks"]
    assert [t["folder"] for t in tasks] == [str(train), str(val)]
    assert (tasks[0]["train_count"], tasks[0]["val_count"], tasks[1]["val_count"]) == (8, 0, 4)


async def test_explore_page_and_record_images_through_the_gateway(
    gateway: httpx.AsyncClient, images: Path
) -> None:
    """The gallery page links every record of the page; each record route serves its image."""
    folder = make_folder(images / "gal", {"a_cat": 6, "b": 6})
    r = await gateway.post(ROUTE, data={**BASE, "folder_train": str(folder)})
    job_id = r.json()["id"]
    assert (await finished(gateway, job_id))["status"] == "Done"
    url = f"/datasets/images/classification/explore?job_id={job_id}&db=train&size=10&label=1"
    page = await gateway.get(url, headers={"Accept": "application/json"})
    body = page.json()
    assert body["total"] == 6 and {i["label"] for i in body["items"]} == {"b"}
    page = await gateway.get(url.replace("&label=1", ""))
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    assert html.count('class="gallery-item"') == 10 and "page=1" in html  # a second page
    assert "Signed in as </span>" in html and "<strong>alice</strong>" in html  # the header
    image = await gateway.get(body["items"][0]["src"])
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    bad = await gateway.get(
        url.replace("size=10", "size=7"), headers={"Accept": "application/json"}
    )
    assert bad.status_code == 400 and "size" in bad.json()["errors"]
    show = (await gateway.get(f"/datasets/{job_id}")).text
    assert f"explore?job_id={job_id}&amp;db=train" in show


async def test_clone_replays_the_saved_form_under_a_new_name(
    gateway: httpx.AsyncClient, images: Path
) -> None:
    """POST with clone=<id> builds the same dataset again (saved fields win, as DIGITS's
    fill_form_from_job); a name sent with it names the copy."""
    folder = make_folder(images / "orig", {"a_cat": 3, "b": 3})
    first = await gateway.post(
        ROUTE, data={**BASE, "folder_train": str(folder), "resize_width": "6"}
    )
    original = first.json()["id"]
    r = await gateway.post(
        ROUTE, data={"clone": original, "dataset_name": "copy", "resize_width": "9"}
    )
    assert r.status_code == 200, r.text
    body = await finished(gateway, r.json()["id"])
    assert body["name"] == "copy" and body["status"] == "Done"
    assert body["spec"]["folder_train"] == str(folder) and body["spec"]["resize_width"] == 6
    missing = await gateway.post(ROUTE, data={"clone": "20200101-000000-none"})
    assert missing.status_code == 404
