"""Classify many from an uploaded archive through the gateway: the JSON job, the page, refusals."""

from __future__ import annotations

import httpx

from tests.inference.test_archive import CLASSES, tgz_of, zip_of
from tests.inference.test_gateway_routes import client  # noqa: F401
from tests.inference.test_many import service  # noqa: F401
from tests.inference.test_many_routes import finished_page, until_done
from tests.inference.test_service import png

MANY = "/models/images/classification/classify_many"


def post_archive(c: httpx.AsyncClient, path: str, name: str, data: bytes, **fields: str):
    """POST a multipart request with `data` as the image_archive upload."""
    files = {"image_archive": (name, data, "application/octet-stream")}
    return c.post(path, data=fields, files=files)


async def test_archive_json_runs_as_a_job_scored_by_class_folders(client, service):  # noqa: F811
    """A .tar.gz on the .json route: 202, then Done with accuracy from the class folders."""
    r = await post_archive(client, f"{MANY}.json", "set.tar.gz", tgz_of(CLASSES), job_id="m")
    assert r.status_code == 202, r.text
    state = await until_done(client, r.json()["status_url"])
    assert state["status"] == "Done" and state["total"] == 5, state
    result = state["result"]
    assert result["top1_accuracy"] == 100.0
    assert result["classifications"]["set/bright/b.png"][0][0] == "bright"


async def test_archive_form_redirects_to_the_job_page(client, service):  # noqa: F811
    """The model page's form (empty list input, an archive) leads to the result page."""
    files = {
        "image_list": ("", b"", "application/octet-stream"),
        "image_archive": ("set.zip", zip_of(CLASSES), "application/zip"),
    }
    r = await client.post(MANY, data={"job_id": "m"}, files=files)
    page = await finished_page(client, r)
    assert page.status_code == 200 and "set/dark/a.png" in page.text


async def test_archive_refusals(client, service):  # noqa: F811
    """`../` members 400 on image_archive, a wrong type 400, a body over the limit 413."""
    evil = zip_of({"ok/a.png": png(0), "../../../tmp/evil.png": png(1)})
    r = await post_archive(client, f"{MANY}.json", "x.zip", evil, job_id="m")
    assert r.status_code == 400 and "image_archive" in r.text and "outside the archive" in r.text
    r = await post_archive(client, f"{MANY}.json", "x.rar", b"Rar!", job_id="m")
    assert r.status_code == 400 and "image_archive" in r.text
    big = zip_of({"a.png": png(0)}) + bytes(3 * 1024 * 1024)  # over this gateway's 2 MB cap
    r = await post_archive(client, f"{MANY}.json", "big.zip", big, job_id="m")
    assert r.status_code == 413
