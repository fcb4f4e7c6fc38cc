"""Explore a built split: pages by label straight from the .rec/.idx, one record's image."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from digits_datasets.settings import Settings
from digits_proto import codec, subjects
from digits_proto.datasets import DatasetBuilt, ExploreDataset, GetDatasetRecord
from digits_proto.runtime import request
from tests.fakes.principals import ALICE

from .conftest import make_folder
from .test_service import create, fetch, read_records, wait_terminal


async def ask(nc, subject: str, query, decoder):
    body, rejected = await request(nc, subject, query)
    return (None, rejected) if rejected else (decoder.decode(body), None)


@pytest.mark.parametrize("encoding", ["png", "none"])
async def test_pages_filter_by_label_and_records_match_the_packed_file(
    service: Settings, nc, js, images: Path, tmp_path: Path, encoding: str
) -> None:
    """Pages cover the split in order; a label filter keeps only that class; images decode."""
    folder = make_folder(images / "ex", {"a_cat": 7, "b": 5, "c": 6})
    accepted, _ = await create(
        nc, folder, folder_pct_val=0, encoding=encoding, resize_width=12, resize_height=10
    )
    built = (await wait_terminal(js, accepted.id))[-1]
    assert isinstance(built, DatasetBuilt)
    train = built.splits[0]
    cache = tmp_path / "c"
    packed = read_records(await fetch(js, train.rec, cache), await fetch(js, train.idx, cache))

    seen = []
    for page in range(2):
        reply, rejected = await ask(
            nc,
            subjects.CMD_DATASETS_EXPLORE,
            ExploreDataset(dataset_id=accepted.id, db="train", page=page, size=10, principal=ALICE),
            codec.explore_reply,
        )
        assert rejected is None, rejected
        assert reply.total == 18 and reply.labels == ["a_cat", "b", "c"]
        seen += list(zip(reply.indices, reply.record_labels, strict=True))
    assert seen == [(i, label) for i, (label, _) in enumerate(packed)]

    only_b, _ = await ask(
        nc,
        subjects.CMD_DATASETS_EXPLORE,
        ExploreDataset(dataset_id=accepted.id, page=0, size=25, label=1, principal=ALICE),
        codec.explore_reply,
    )
    assert only_b.total == 5 and set(only_b.record_labels) == {1}

    record, _ = await ask(
        nc,
        subjects.CMD_DATASETS_RECORD,
        GetDatasetRecord(dataset_id=accepted.id, db="train", index=3, principal=ALICE),
        codec.record_reply,
    )
    assert record.label == packed[3][0] and record.media_type == "image/png"
    shown = Image.open(io.BytesIO(record.image))
    assert shown.size == (12, 10)
    if encoding == "png":
        assert record.image == packed[3][1]


async def test_explore_refusals_name_the_field(service: Settings, nc, js, images: Path) -> None:
    """Bad page size, a split the dataset lacks, a bad label or record: 400/404 with the field."""
    folder = make_folder(images / "ex2", {"a_cat": 3, "b": 3})
    accepted, _ = await create(nc, folder, folder_pct_val=0)
    await wait_terminal(js, accepted.id)
    cases = [
        (ExploreDataset(dataset_id=accepted.id, size=7, principal=ALICE), 400, "size"),
        (ExploreDataset(dataset_id=accepted.id, db="val", principal=ALICE), 400, "db"),
        (ExploreDataset(dataset_id=accepted.id, label=5, principal=ALICE), 400, "label"),
        (ExploreDataset(dataset_id=accepted.id, page=-1, principal=ALICE), 400, "page"),
        (ExploreDataset(dataset_id="20200101-000000-none", principal=ALICE), 404, "dataset_id"),
    ]
    for query, code, field in cases:
        _, rejected = await ask(nc, subjects.CMD_DATASETS_EXPLORE, query, codec.explore_reply)
        assert rejected is not None and (rejected.code, rejected.field) == (code, field), rejected
    _, rejected = await ask(
        nc,
        subjects.CMD_DATASETS_RECORD,
        GetDatasetRecord(dataset_id=accepted.id, index=99, principal=ALICE),
        codec.record_reply,
    )
    assert rejected is not None and (rejected.code, rejected.field) == (404, "index")
