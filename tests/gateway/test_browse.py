"""DIGITS's navigation routes: the list roots, path completion inside the data roots, /files/."""

from __future__ import annotations

from pathlib import Path

from digits_gateway.app import create_app
from tests.gateway.accounts import sign_in
from tests.gateway.conftest import make_settings, running, wait_ready


async def test_datasets_and_models_roots_land_on_the_home_page(client) -> None:
    """GET /datasets and /models redirect to `/`, where their tables are (DIGITS's blueprints)."""
    for path in ("/datasets", "/models"):
        r = await client.get(path)
        assert (r.status_code, r.headers["location"]) == (302, "/")


async def test_autocomplete_suggests_only_inside_the_data_roots(
    nats_url: str, tmp_path: Path, backend
) -> None:
    """Entries under a root complete; `/` suggests only the root; outside paths suggest nothing."""
    root = tmp_path / "images"
    (root / "cats").mkdir(parents=True)
    (root / "cars").mkdir()
    (root / "dogs").mkdir()
    (root / ".hidden").mkdir()
    settings = make_settings(nats_url, tmp_path, data_roots=[str(root)])
    async with running(create_app(settings)) as client:
        await wait_ready(client)
        await sign_in(client, "alice")

        async def suggest(query: str) -> list[str]:
            r = await client.get("/autocomplete/path", params={"query": query})
            assert r.status_code == 200
            return r.json()["suggestions"]

        assert await suggest(f"{root}/ca") == [str(root / "cars"), str(root / "cats")]
        assert await suggest(f"{root}/") == [str(root / n) for n in ("cars", "cats", "dogs")]
        assert await suggest("/") == [str(root.resolve())]
        assert await suggest("/etc/pass") == []
        assert await suggest("./") == []
        assert await suggest(f"{root}/../../../etc/") == []


async def test_files_route_serves_only_a_dataset_mean_image(client) -> None:
    """/files/<id>/<name>: other files, unknown jobs and a mean not built yet are 404s.

    (The 200 with the image itself is driven through the real system in
    tests/e2e/test_digits_suite.py, where a dataset is really built.)"""
    dataset = (
        await client.post(
            "/datasets/images/classification.json",
            data={"dataset_name": "pets", "folder_train": "/data/pets"},
        )
    ).json()
    r = await client.get(f"/files/{dataset['id']}/mean.jpg")
    assert r.status_code == 404 and "mean" in r.text
    assert (await client.get(f"/files/{dataset['id']}/status.pickle")).status_code == 404
    assert (await client.get("/files/20200101-000000-none/mean.jpg")).status_code == 404
