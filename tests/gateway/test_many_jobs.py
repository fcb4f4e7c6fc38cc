"""A read model holding 1,000 jobs: `/index.json` equals each job's own JSON, and the `/api/v1`
lists walk page by page through every job exactly once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

from digits_proto import codec, subjects, utcnow
from digits_proto.base import BlobRef
from digits_proto.datasets import DatasetBuilt, DatasetCreated, DatasetSpec, SplitBlobs
from digits_proto.models import (
    ModelCreated,
    ModelDeleted,
    ModelWaiting,
    SnapshotSaved,
    TrainingCompleted,
    TrainingStarted,
    TrainSpec,
)
from tests.gateway.helpers import until

MODELS = 1000
DATASETS = 3


def blob(name: str) -> BlobRef:
    return BlobRef(bucket=subjects.BUCKET_MODELS, name=name, digest="0" * 64, size=1)


def lab() -> tuple[list[tuple[str, Any]], list[str], list[str]]:
    """(subject, event) for 3 built datasets and 1,000 models (every 10th deleted, some
    trained with snapshots, many created in the same second: paging must break ties), the
    live dataset ids and the live model ids."""
    at = utcnow() - timedelta(days=1)
    events: list[tuple[str, Any]] = []
    datasets = [f"20260101-000000-d{i:03d}" for i in range(DATASETS)]
    for i, ds in enumerate(datasets):
        subject = subjects.dataset_events(ds)
        split = SplitBlobs(split="train", rec=blob("r"), idx=blob("i"), entries=30 + i)
        events += [
            (
                subject,
                DatasetCreated(
                    dataset_id=ds,
                    name=f"digits {i}",
                    username="alice",
                    spec=DatasetSpec(folder_train="/data/x"),
                    occurred_at=at,
                ),
            ),
            (
                subject,
                DatasetBuilt(
                    dataset_id=ds,
                    labels=["a", "b", str(i)],
                    splits=[split],
                    labels_blob=blob("l"),
                    mean=blob("m"),
                    mean_jpg=blob("j"),
                    image_width=28 + i,
                    image_height=28,
                    image_channels=1,
                    occurred_at=at,
                ),
            ),
        ]
    live: list[str] = []
    for j in range(MODELS):
        model = f"20260102-{j // 100:06d}-m{j:03d}"  # ten per second share a creation time
        when = at + timedelta(seconds=j // 10)
        subject = subjects.model_events(model)
        events += [
            (
                subject,
                ModelCreated(
                    model_id=model,
                    name=f"lenet {j}",
                    username="alice",
                    dataset_id=datasets[j % DATASETS],
                    spec=TrainSpec(train_epochs=2),
                    occurred_at=when,
                ),
            ),
            (subject, ModelWaiting(model_id=model, reason="devices busy", occurred_at=when)),
        ]
        if j % 3 == 0:
            events += [
                (
                    subject,
                    TrainingStarted(
                        model_id=model,
                        node_id="n1",
                        devices=["cpu0"],
                        lease_id=f"l{j}",
                        occurred_at=when,
                    ),
                ),
                (
                    subject,
                    SnapshotSaved(
                        model_id=model,
                        epoch=1,
                        symbol=blob("s"),
                        params=blob("p"),
                        state=blob("t"),
                        input_shape=[1, 28, 28],
                        occurred_at=when,
                    ),
                ),
                (subject, TrainingCompleted(model_id=model, occurred_at=when)),
            ]
        if j % 10 == 7:
            events.append((subject, ModelDeleted(model_id=model, actor="alice", occurred_at=when)))
        else:
            live.append(model)
    return events, datasets, live


async def publish_lab(js) -> tuple[list[str], list[str]]:
    events, datasets, models = lab()
    for subject, event in events:
        await js.publish_async(subject, codec.encode(event))
    await js.publish_async_completed()
    return datasets, models


async def walk(client: httpx.AsyncClient, url: str) -> list[str]:
    """Every id on every page, following `next` until it is null."""
    ids: list[str] = []
    pages = 0
    next_url: str | None = url
    while next_url is not None:
        r = await client.get(next_url)
        assert r.status_code == 200, r.text
        body = r.json()
        ids += [j["id"] for j in body["jobs"]]
        next_url = body["next"]
        pages += 1
        assert pages <= 1000, "paging never ends"
    return ids


async def test_index_and_pages_of_a_thousand_jobs_are_complete_and_agree(client, js) -> None:
    """/index.json lists every live model as /models/<id>.json shows it; /api/v1 pages walk
    every job once, in order, with no gap and no duplicate."""
    datasets, models = await publish_lab(js)

    async def projected():
        index = (await client.get("/index.json")).json()
        return index if len(index["models"]) == len(models) else None

    index = await until(projected, timeout=60)
    assert [m["id"] for m in index["models"]] == models
    assert [d["id"] for d in index["datasets"]] == datasets
    for entry in index["models"][::37]:  # a sample: each is the job's own JSON, field for field
        assert entry == (await client.get(f"/models/{entry['id']}.json")).json()
    trained = next(m for m in index["models"] if m["id"].endswith("m000"))
    assert [s for s, _ in trained["status_history"]] == [
        "Initialized",
        "Waiting",
        "Running",
        "Done",
    ]
    assert trained["snapshots"] == [1] and trained["image dimensions"] == [28, 28, 1]

    assert await walk(client, "/api/v1/models?limit=37") == models
    assert await walk(client, "/api/v1/models") == models  # the default page size
    assert await walk(client, "/api/v1/datasets?limit=2") == datasets
    assert await walk(client, "/api/v1/jobs?limit=1000") == datasets + models
    last = (await client.get("/api/v1/models", params={"limit": 1000})).json()
    assert len(last["jobs"]) == len(models) and last["next"] is None


async def test_a_page_of_a_bad_size_or_an_unknown_cursor_is_a_400_naming_it(client) -> None:
    """limit outside 1–1,000 or a cursor naming no job: 400s that name the parameter."""
    for limit in ("0", "1001", "many"):
        r = await client.get("/api/v1/models", params={"limit": limit})
        assert r.status_code == 400 and "limit" in r.text, r.text
    r = await client.get("/api/v1/jobs", params={"cursor": "20990101-000000-none"})
    assert r.status_code == 400 and "cursor" in r.text, r.text
