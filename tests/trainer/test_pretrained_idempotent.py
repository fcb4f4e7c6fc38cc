"""A pretrained-model upload retried under its Idempotency-Key: one job, one copy of its files
(the real trainer and gateway; see test_pretrained.py for the fixtures)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from nats.js import JetStreamContext

from digits_proto import subjects
from tests.trainer.test_pretrained import (  # noqa: F401 - fixtures
    client,
    inference,
    lenet_archive,
    upload,
)

pytestmark = pytest.mark.timeout(180)


async def model_jobs(js: JetStreamContext) -> set[str]:
    info = await js.stream_info(subjects.STREAM_MODELS, subjects_filter=">")
    return {s.rsplit(".", 1)[-1] for s in info.state.subjects or {}}


async def stored_jobs(js: JetStreamContext) -> set[str]:
    """The job ids that own files in the models bucket."""
    bucket = await js.object_store(subjects.BUCKET_MODELS)
    try:
        names = [o.name for o in await bucket.list(ignore_deletes=True)]
    except Exception:  # noqa: BLE001 - nats-py raises NotFoundError for an empty bucket
        names = []
    return {n.split("/", 1)[0] for n in names}


async def test_an_upload_sent_twice_makes_one_pretrained_model(client, js, tmp_path: Path):  # noqa: F811
    """The upload form posted twice with its hidden key, then twice at once: each pair answers
    with one job, and only that job's files stay in the models bucket."""
    archive = lenet_archive(tmp_path)
    first = await upload(client, archive, idempotency_key="upload-1")
    again = await upload(client, archive, idempotency_key="upload-1")
    assert first.status_code == again.status_code == 200, (first.text, again.text)
    assert again.json() == first.json()
    racing = await asyncio.gather(
        *(upload(client, archive, idempotency_key="upload-2") for _ in range(2))
    )
    assert [r.status_code for r in racing] == [200, 200], [r.text for r in racing]
    assert racing[0].json()["id"] == racing[1].json()["id"]
    ids = {first.json()["id"], racing[0].json()["id"]}
    assert await model_jobs(js) == ids
    assert await stored_jobs(js) == ids
