"""A classify-many ticket whose worker never comes back ends Error after DIGITS_MAX_DELIVER
deliveries (GiveUp), instead of looping or staying Running: real nats-server, the real service.

The lost workers are a pull consumer on the service's durable that takes the ticket and never
answers, as a killed process does (the process-level kill is tests/proto/test_work_takeover.py).
"""

from __future__ import annotations

import asyncio
import time

import msgspec
import pytest

from digits_inference.settings import Settings
from digits_proto import codec, headers, subjects, versions
from digits_proto.base import BlobRef
from digits_proto.inference import ClassifyMany, ClassifyManyTicket, ManyStatus, many_status_name
from digits_proto.runtime import read_bytes
from digits_proto.runtime._work import ensure_consumer
from tests.fakes.principals import ALICE
from tests.inference.inprocess import running_inference

pytestmark = pytest.mark.timeout(120)


async def test_a_ticket_lost_max_deliver_times_ends_the_job_error(nats_url, js, tmp_path):
    """Two deliveries taken and never answered (ack_wait 1 s); the service, max_deliver 2,
    gets the third: it does not run the job, writes status Error naming the cause, and the
    ticket is gone."""
    listing = BlobRef(bucket=subjects.BUCKET_UPLOADS, name="lists/never.txt")
    ticket = ClassifyManyTicket(
        run_id="run-1", command=ClassifyMany(job_id="m", image_list=listing, principal=ALICE)
    )
    hdrs = {headers.SCHEMA: versions.schema_header(ticket)}
    await js.publish(subjects.WORK_CLASSIFY_MANY, codec.encode(ticket), headers=hdrs)
    await ensure_consumer(
        js, subjects.STREAM_WORK, subjects.WORK_CLASSIFY_MANY, subjects.CONSUMER_CLASSIFIER, 1.0
    )
    lost = await js.pull_subscribe(
        subjects.WORK_CLASSIFY_MANY,
        durable=subjects.CONSUMER_CLASSIFIER,
        stream=subjects.STREAM_WORK,
    )
    for n in (1, 2):  # a worker takes it and dies: no ack, no nak, no heartbeat
        [msg] = await lost.fetch(1, timeout=10)
        assert msg.metadata.num_delivered == n
    await lost.unsubscribe()
    settings = Settings(
        nats_url=nats_url,
        data_dir=str(tmp_path / "data"),
        port=-1,
        ack_wait=1.0,
        max_deliver=2,
        use_gpus=False,
    )
    async with running_inference(settings):
        deadline = time.monotonic() + 30
        while True:
            try:
                raw = await read_bytes(js, subjects.BUCKET_UPLOADS, many_status_name("run-1"))
                status = msgspec.json.decode(raw, type=ManyStatus)
                break
            except Exception:  # noqa: BLE001 - not written yet
                assert time.monotonic() < deadline, "no status written"
                await asyncio.sleep(0.1)
        assert status.status == "Error" and status.job_id == "m"
        assert status.error.startswith("the inference worker was lost 2 times while running")
        deadline = time.monotonic() + 10
        while True:
            info = await js.consumer_info(subjects.STREAM_WORK, subjects.CONSUMER_CLASSIFIER)
            if info.num_ack_pending == 0 and info.num_pending == 0:
                break
            assert time.monotonic() < deadline, info
            await asyncio.sleep(0.1)
