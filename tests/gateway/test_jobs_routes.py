"""Login, the home JSON, job routes and the error shapes (never a 500 for bad input)."""

from __future__ import annotations

from digits_gateway.app import create_app
from tests.gateway.accounts import PASSWORDS, sign_in
from tests.gateway.conftest import running, wait_ready
from tests.gateway.helpers import until

DATASET = {"dataset_name": "pets", "folder_train": "/data/pets"}


async def test_login_sets_the_session_and_redirects_to_next(client) -> None:
    """POST /login with a right pair: a session cookie, 302 to a local `next` only."""
    client.cookies.clear()
    r = await client.post(
        "/login", data={"username": "bob", "password": PASSWORDS["bob"], "next": "/models/x"}
    )
    assert (r.status_code, r.headers["location"]) == (302, "/models/x")
    assert (await client.get("/api/v1/session")).json() == {"username": "bob", "role": "user"}
    r = await client.post(
        "/login",
        data={"username": "bob", "password": PASSWORDS["bob"], "next": "https://evil.example"},
    )
    assert r.headers["location"] == "/"


async def test_an_invalid_username_is_refused_as_any_wrong_pair(client) -> None:
    """401 for JSON clients; the login form again (with the error) for pages."""
    r = await client.post(
        "/login",
        data={"username": "Not Valid", "password": "x"},
        headers={"Accept": "application/json"},
    )
    assert r.status_code == 401 and r.json()["error"]["message"] == "Wrong username or password"
    r = await client.post("/login", data={"username": "9lives", "password": "x"})
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("text/html") and "Wrong username" in r.text


async def test_index_and_completed_jobs_list_the_jobs(client) -> None:
    """/index.json lists datasets briefly; /completed_jobs.json puts running jobs first."""
    dataset = (await client.post("/datasets/images/classification.json", data=DATASET)).json()
    index = (await client.get("/index.json")).json()
    assert index["datasets"] == [dataset] and index["models"] == []
    assert index["version"] and index["jobs_dir"]
    table = (await client.get("/completed_jobs.json")).json()
    assert [j["id"] for j in table["running"]] == [dataset["id"]]
    assert table["running"][0]["type"] == "dataset"
    assert table["datasets"] == [] and table["models"] == []


async def test_status_of_an_unknown_job_is_200_with_an_error(client) -> None:
    """DIGITS's /jobs/<id>/status never fails: unknown → {"error": "Job not found."}."""
    r = await client.get("/jobs/nope/status")
    assert (r.status_code, r.json()) == (200, {"error": "Job not found."})


async def test_unknown_routes_and_methods_answer_json_errors(client) -> None:
    """404/405 come back in DIGITS's error shape for JSON clients."""
    r = await client.get("/nothing.json")
    assert r.status_code == 404 and r.json()["error"]["type"] == "NotFound"
    r = await client.get("/datasets/images/classification.json")
    assert r.status_code == 405


async def test_junk_bodies_never_give_a_500(client) -> None:
    """Broken JSON, odd content types and huge numbers are 400s."""
    r = await client.post(
        "/datasets/images/classification.json",
        content=b"{oops",
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 400
    r = await client.post(
        "/datasets/images/classification.json", data={**DATASET, "resize_width": "9" * 400}
    )
    assert r.status_code == 400 and "resize_width" in r.json()["errors"]
    r = await client.post(
        "/models/images/classification.json",
        data={"dataset": "x", "model_name": "m", "learning_rate": "nan"},
    )
    assert r.status_code == 400 and "learning_rate" in r.json()["errors"]


async def test_views_are_rebuilt_equal_after_the_duckdb_file_is_deleted(settings, backend) -> None:
    """Gateway stopped, DuckDB deleted, gateway started: once ready, the same JSON answers."""
    async with running(create_app(settings)) as client:
        await wait_ready(client)
        await sign_in(client, "alice")
        ds = (await client.post("/datasets/images/classification.json", data=DATASET)).json()
        await backend.build(ds["id"])
        await until(lambda: _done(client, ds["id"]))
        model = (
            await client.post(
                "/models/images/classification.json",
                data={"dataset": ds["id"], "model_name": "m", "standard_networks": "lenet"},
            )
        ).json()
        await backend.start_training(model["id"])
        for i in range(30):
            await backend.metric(model["id"], i)
        await backend.snapshot(model["id"], 1.0)
        await until(lambda: _snapshots(client, model["id"]))
        before = [
            (await client.get(p)).json()
            for p in (
                "/index.json",
                f"/datasets/{ds['id']}.json",
                f"/api/v1/models/{model['id']}/metrics",
            )
        ]
    settings.readmodel_path.unlink()
    async with running(create_app(settings)) as client:
        await wait_ready(client)  # ready means: everything stored at start is projected
        await sign_in(client, "alice")
        after = [
            (await client.get(p)).json()
            for p in (
                "/index.json",
                f"/datasets/{ds['id']}.json",
                f"/api/v1/models/{model['id']}/metrics",
            )
        ]
    assert after == before


async def _done(client, job_id: str) -> bool:
    return (await client.get(f"/jobs/{job_id}/status")).json().get("status") == "Done"


async def _snapshots(client, model_id: str) -> bool:
    """The snapshot (models stream) and all 30 points (metrics stream) are projected."""
    r = await client.get(f"/models/{model_id}.json")
    m = await client.get(f"/api/v1/models/{model_id}/metrics")
    return r.status_code == 200 and r.json()["snapshots"] == [1.0] and len(m.json()["points"]) == 30


async def test_html_variants_render_the_web_pages(client, backend) -> None:
    """Without .json the job routes render pages, and a bad form comes back with its errors."""
    html = {"Accept": "text/html"}
    ds = (await client.post("/datasets/images/classification.json", data=DATASET)).json()
    await backend.build(ds["id"])
    await until(lambda: _done(client, ds["id"]))
    page = await client.get(f"/datasets/{ds['id']}", headers=html)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "pets" in page.text
    model = (
        await client.post(
            "/models/images/classification.json",
            data={"dataset": ds["id"], "model_name": "mnet", "standard_networks": "lenet"},
        )
    ).json()
    page = await client.get(f"/models/{model['id']}", headers=html)
    assert page.status_code == 200 and "mnet" in page.text
    form = await client.post(
        "/datasets/images/classification", data={**DATASET, "folder_pct_val": "lots"}, headers=html
    )
    assert form.status_code == 400 and form.headers["content-type"].startswith("text/html")
    assert "Not a valid integer value." in form.text
