"""classify_many and top_n through the gateway: DIGITS's JSON, the extra keys, jobs, pages."""

from __future__ import annotations

import asyncio
import re

import httpx

from tests.inference.test_gateway_routes import client  # noqa: F401
from tests.inference.test_many import service  # noqa: F401

LIST = "black.png 0\ngrey.png 1\nwhite.png 2\ndark.png 2\njunk.png 1\n../x.png 0\n"
MANY = "/models/images/classification/classify_many"
TOP_N = "/models/images/classification/top_n"


def post_list(c, path: str, text: str, **data: str):
    """POST a multipart request with `text` as the image_list upload."""
    files = {"image_list": ("list.txt", text.encode(), "text/plain")}
    return c.post(path, data=data, files=files)


async def until_done(c: httpx.AsyncClient, status_url: str) -> dict:
    """Poll a job's status JSON until it is Done or Error."""
    for _ in range(200):
        state = (await c.get(status_url)).json()
        if state["status"] in ("Done", "Error"):
            return state
        await asyncio.sleep(0.05)
    raise AssertionError(f"job not finished: {state}")


async def finished_page(c: httpx.AsyncClient, response: httpx.Response) -> httpx.Response:
    """Follow a form's redirect to its job, wait until done, then fetch the job's page."""
    assert response.status_code == 303, response.text
    url = response.headers["location"]
    assert (await until_done(c, f"{url}.json"))["status"] == "Done"
    return await c.get(url)


async def test_classify_many_json_has_digits_classifications_and_accuracy(client, service):  # noqa: F811
    """`classifications` keyed by path with top-5, plus accuracy, confusion, per-class, errors."""
    r = await post_list(client, f"{MANY}.json", LIST, job_id="m", image_folder=str(service))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["classifications"][str(service / "white.png")][0][0] == "bright"
    assert len(body["classifications"]) == 4
    assert body["top1_accuracy"] == 75.0 and body["top5_accuracy"] == 100.0
    assert body["confusion_matrix"] == [[1, 0, 0], [0, 1, 0], [1, 0, 1]]
    assert body["per_class_accuracy"] == {"dark": 100.0, "mid": 100.0, "bright": 50.0}
    assert [e["line"] for e in body["errors"]] == [5, 6]


async def test_classify_many_page_has_matrix_cells_and_sortable_results(
    client,  # noqa: F811
    service,  # noqa: F811
    monkeypatch,
):
    """A small list's page comes in the reply (as DIGITS's); a long one runs as a followed job;
    both show accuracies, clickable matrix cells and one row per image."""
    from digits_gateway import many

    now = await post_list(client, MANY, LIST, job_id="m", image_folder=str(service))
    monkeypatch.setattr(many, "SYNC_LINES", 3)
    later = await post_list(client, MANY, LIST, job_id="m", image_folder=str(service))
    for r in (now, await finished_page(client, later)):
        _assert_classify_many_page(r)


def _assert_classify_many_page(r: httpx.Response) -> None:
    assert r.status_code == 200, r.text
    assert 'id="top1-accuracy">75.00 %' in r.text
    assert len(re.findall(r'class="cell( strong)?"', r.text)) == 4
    assert r.text.count("<tr data-truth=") == 4
    assert "2 lines not classified" in r.text


async def test_top_n_page_shows_a_mosaic_per_class(client, service):  # noqa: F811
    """top_n: one section per class with an image mosaic; JSON has the ranked paths."""
    r = await post_list(client, TOP_N, LIST, job_id="m", image_folder=str(service), top_n="2")
    assert r.status_code == 200, r.text
    assert r.text.count('class="card mosaic"') == 3 and "data:image/png;base64," in r.text
    r = await post_list(
        client, f"{TOP_N}.json", LIST, job_id="m", image_folder=str(service), top_n="2"
    )
    assert [len(t["paths"]) for t in r.json()["top_n"]] == [2, 2, 2]


async def test_long_json_lists_run_as_a_job_with_a_status_url(client, service, monkeypatch):  # noqa: F811
    """Over SYNC_LINES lines, the .json route answers 202 with a status URL that ends Done."""
    from digits_gateway import many

    monkeypatch.setattr(many, "SYNC_LINES", 3)
    r = await post_list(client, f"{MANY}.json", LIST, job_id="m", image_folder=str(service))
    assert r.status_code == 202, r.text
    state = await until_done(client, r.json()["status_url"])
    assert state["status"] == "Done" and state["done"] == state["total"] == 6
    assert state["result"]["top1_accuracy"] == 75.0
    assert (await client.get(f"{MANY}/20260101-000000-abcd")).status_code == 404
    assert (await client.get(f"{MANY}/nope.json")).status_code == 404


async def test_classify_many_refusals(client, service):  # noqa: F811
    """No list 400, an empty list 400, unknown job 404, bad num_test_images 400."""
    url = f"{MANY}.json"
    assert (await client.post(url, data={"job_id": "m"})).status_code == 400
    assert (await post_list(client, url, "  \n", job_id="m")).status_code == 400
    assert (await post_list(client, url, "a.png", job_id="nope")).status_code == 404
    bad = await post_list(client, url, "a.png", job_id="m", num_test_images="x")
    assert bad.status_code == 400
