"""A queued classify-many job under an Idempotency-Key: a retry, even a racing one, gets the
first job (the real inference service; fixtures from test_many.py)."""

from __future__ import annotations

import asyncio
import time
import uuid

from nats.js import JetStreamContext

from digits_inference.registry import Registry
from digits_inference.retention import KEYS, Sweeper
from digits_proto import codec, subjects
from digits_proto.base import Principal
from digits_proto.inference import ClassifyMany, ClassifyManyQueued
from digits_proto.replies import Rejected
from digits_proto.runtime import put_bytes, request
from tests.fakes.principals import ALICE, BOB
from tests.inference.test_many import service  # noqa: F401 - fixture

DAY = 24 * 3600.0
LIST = b"black.png 0\nwhite.png 2\n"


async def queue(nc, js, folder, key: str, digest: str = "d", who: Principal = ALICE):
    """Upload a list and send a keyed background ClassifyMany; its reply."""
    name = f"lists/{uuid.uuid4().hex}.txt"
    ref = await put_bytes(js, subjects.BUCKET_UPLOADS, name, LIST)
    cmd = ClassifyMany(
        job_id="m",
        image_list=ref,
        image_folder=str(folder),
        background=True,
        principal=who,
        idempotency_key=key,
        request_digest=digest,
    )
    body, rejected = await request(nc, subjects.CMD_INFERENCE_CLASSIFY_MANY, cmd, 10)
    return rejected or codec.classify_many_reply.decode(body)


async def runs(js: JetStreamContext) -> set[str]:
    """The classify-many jobs that have a status in the uploads bucket."""
    store = await js.object_store(subjects.BUCKET_UPLOADS)
    names = [o.name for o in await store.list(ignore_deletes=True)]
    return {n.split("/")[1] for n in names if n.endswith("/status.json")}


async def test_a_retried_background_job_is_the_first_one(service, nc, js) -> None:  # noqa: F811
    """Sequential and racing retries under one key name one job; another user's key is his
    own job; the key with another request is a 422 naming it."""
    first = await queue(nc, js, service, "k1")
    again = await queue(nc, js, service, "k1")
    assert isinstance(first, ClassifyManyQueued) and isinstance(again, ClassifyManyQueued)
    # The status blob changes as the job runs: its name is the answer, not its digest.
    assert (again.run_id, again.total, again.status.name) == (
        first.run_id,
        first.total,
        first.status.name,
    )
    racing = await asyncio.gather(*(queue(nc, js, service, "k2") for _ in range(3)))
    assert len({r.run_id for r in racing if isinstance(r, ClassifyManyQueued)}) == 1, racing
    his = await queue(nc, js, service, "k1", who=BOB)
    assert isinstance(his, ClassifyManyQueued) and his.run_id != first.run_id
    assert await runs(js) == {first.run_id, racing[0].run_id, his.run_id}
    other = await queue(nc, js, service, "k1", digest="another")
    assert isinstance(other, Rejected) and (other.code, other.field) == (422, "Idempotency-Key")


async def test_key_records_are_kept_as_long_as_a_job(service, nc, js) -> None:  # noqa: F811
    """A key's record stays through the retention period (a retry still finds its job) and
    goes with the job's blobs after it."""
    first = await queue(nc, js, service, "kept")
    assert isinstance(first, ClassifyManyQueued)
    sweeper = Sweeper(js, Registry(js), retention=DAY)
    await sweeper.sweep()
    again = await queue(nc, js, service, "kept")
    assert isinstance(again, ClassifyManyQueued) and again.run_id == first.run_id
    deleted = await sweeper.sweep(now=time.time() + DAY + 60)
    assert [n for n in deleted if n.startswith(KEYS)], deleted
