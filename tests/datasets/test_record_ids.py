"""The datasets service checks the ids it puts into subjects itself (the bus is a trust
boundary): explore and record refuse anything but a job id, before loading any events."""

from __future__ import annotations

from pathlib import Path

import pytest

from digits_datasets.errors import DatasetNotFound
from digits_datasets.explore import Explorer
from digits_proto.datasets import ExploreDataset, GetDatasetRecord


class NoStore:
    """An event store that fails the test if it is read."""

    async def load(self, subject: str):
        raise AssertionError(f"loaded {subject}")


@pytest.mark.parametrize("bad", ["*", ">", "a.b", "x.>", "zz", "20200101-000000-ab.cd"])
async def test_explore_and_record_refuse_an_id_that_is_not_a_job_id(tmp_path: Path, bad) -> None:
    """404 (DatasetNotFound) for wildcards, separators and ids no build could have made."""
    explorer = Explorer(js=None, store=NoStore(), cache_dir=tmp_path)  # type: ignore[arg-type]
    with pytest.raises(DatasetNotFound):
        await explorer.record(GetDatasetRecord(dataset_id=bad, db="train", index=0))
    with pytest.raises(DatasetNotFound):
        await explorer.page(ExploreDataset(dataset_id=bad))
