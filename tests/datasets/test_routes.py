"""The datasets service's HTTP routes: builds in flight and a dataset as folded from its stream."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from digits_datasets.packing import EncodeSpec
from digits_datasets.settings import Settings
from digits_datasets.shards import Packer
from digits_proto.datasets import DatasetBuilt
from tests.datasets.test_pack_window import plan_of

from .conftest import make_folder, running
from .test_service import create, wait_terminal


async def test_the_packer_counts_skipped_files_as_it_goes(tmp_path: Path) -> None:
    """`Packer.skipped` grows chunk by chunk to every file that could not be packed."""
    plan = plan_of(tmp_path, 8, 6)
    seen: list[int] = []
    with ThreadPoolExecutor(2) as executor:
        packer = Packer(executor, EncodeSpec(width=4, height=4, channels=3), 2, inflight=2)

        async def progress(*_: object) -> None:
            seen.append(packer.skipped)

        await packer.pack(plan, tmp_path / "out", lambda: False, progress)
    assert seen == sorted(seen) and seen[-1] == packer.skipped == 6
    assert seen[0] < 6  # counted as chunks are written, not at the end


@pytest.mark.parametrize("overrides", [{"port": 0, "chunk_size": 1}])
async def test_builds_in_flight_and_the_folded_dataset(
    settings: Settings, nc, js, images: Path
) -> None:
    """While a build runs, GET /builds shows it (progress, pool workers, skipped files, start);
    once built it is gone from there and GET /datasets/{id} shows the folded aggregate (Done,
    its blobs); unknown or malformed ids are a 404."""
    folder = make_folder(images / "many", {"a_cat": 40, "b": 40, "c": 40})
    async with running(settings) as host:
        http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{host.bound_port}")
        try:
            assert (await http.get("/builds")).json() == []
            accepted, _ = await create(nc, folder)
            assert accepted is not None
            deadline = asyncio.get_running_loop().time() + 30
            while not (builds := (await http.get("/builds")).json()) or not builds[0]["done"]:
                assert asyncio.get_running_loop().time() < deadline, "no build in flight seen"
                await asyncio.sleep(0.02)
            [build] = builds
            assert "digits_datasets_builds_running 1.0" in (await http.get("/metrics")).text
            assert build["dataset_id"] == accepted.id and build["workers"] == 1
            assert 0 < build["done"] <= build["total"] == 120 and build["skipped"] == 0
            assert build["phase"] in ("train", "val", "upload") and build["started_at"]

            events = await wait_terminal(js, accepted.id)
            assert isinstance(events[-1], DatasetBuilt)
            assert (await http.get("/builds")).json() == []
            answer = await http.get(f"/datasets/{accepted.id}")
            assert answer.status_code == 200
            body = answer.json()
            assert body["state"]["status"] == "Done" and body["sequence"] > 0
            assert body["state"]["built"]["labels"] == ["a_cat", "b", "c"]
            for bad in ("20260101-000000-abcd", "a.b", "x*"):
                assert (await http.get(f"/datasets/{bad}")).status_code == 404, bad
        finally:
            await http.aclose()
