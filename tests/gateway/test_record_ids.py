"""The records route puts its job id into a subject: anything but a job id is a 404, and no
command is sent (a '*', '>' or '.' would address other datasets' subjects)."""

from __future__ import annotations

import pytest

from digits_proto import codec, new_job_id, subjects
from digits_proto.datasets import DatasetRecord, GetDatasetRecord


@pytest.fixture
async def records(nc) -> list[GetDatasetRecord]:
    """Record commands as the datasets service would receive them (answered with one pixel)."""
    seen: list[GetDatasetRecord] = []

    async def answer(msg) -> None:
        seen.append(codec.dataset_commands.decode(msg.data))
        await msg.respond(
            codec.encode(DatasetRecord(image=b"\x89PNG", media_type="image/png", label=0))
        )

    sub = await nc.subscribe(subjects.CMD_DATASETS_RECORD, cb=answer)
    yield seen
    await sub.unsubscribe()


@pytest.mark.parametrize("job_id", ["*", ">", "a.b", "x.>", "20200101-000000-ab.cd"])
async def test_a_job_id_that_is_not_one_is_a_404_and_sends_nothing(client, records, job_id) -> None:
    """Wildcards and separators are refused before any subject is built."""
    response = await client.get(f"/datasets/{job_id}/records/train/0")
    assert response.status_code == 404
    assert records == []


async def test_a_real_job_id_reaches_the_datasets_service(client, records) -> None:
    """The same route with a DIGITS-style id sends the command (so the refusal above is the
    id check, not a broken route)."""
    job_id = new_job_id()
    response = await client.get(f"/datasets/{job_id}/records/train/0")
    assert response.status_code == 200 and response.content == b"\x89PNG"
    assert [r.dataset_id for r in records] == [job_id]
