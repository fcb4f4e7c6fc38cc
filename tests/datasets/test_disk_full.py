"""A build whose data dir is full or read-only (a real tmpfs) ends Error naming file and node."""

from __future__ import annotations

import asyncio
import socket
import time

import msgspec
import pytest

from digits_datasets.settings import Settings
from digits_proto import subjects
from digits_proto.datasets import AbortDataset, DatasetFailed
from digits_proto.runtime import request
from tests.fakes.principals import ALICE
from tests.mounts import tmpfs

from .conftest import make_folder, running
from .test_service import blob_names, create, wait_terminal

pytestmark = pytest.mark.timeout(120)


async def settled(js, timeout: float = 10.0):
    """The builder's consumer once nothing is pending or unacked."""
    deadline = time.monotonic() + timeout
    while True:
        info = await js.consumer_info(subjects.STREAM_WORK, subjects.CONSUMER_DATASET_BUILDER)
        if info.num_ack_pending == 0 and info.num_pending == 0:
            return info
        assert time.monotonic() < deadline, info
        await asyncio.sleep(0.05)


@pytest.mark.parametrize(
    ("read_only", "reason", "where"),
    [
        (False, "No space left on device", "datasets/jobs/{id}/train.rec"),  # its own shards
        (True, "Read-only file system", "datasets"),  # the first folder it cannot make
    ],
    ids=["full", "read-only"],
)
async def test_a_build_on_a_full_or_read_only_disk_ends_error_naming_file_and_node(
    read_only: bool, reason: str, where: str, settings: Settings, nc, js, images, tmp_path
) -> None:
    """Raw 256×256 images (~4.7 MB packed) into a 2 MiB tmpfs data dir, or a read-only one:
    DatasetFailed "<reason> writing <the file or folder> on node <host>", the build's
    folder and any uploaded blob gone, the ticket ACKed once; an abort then answers 403."""
    folder = make_folder(images / "big", {"a_cat": 8, "b": 8, "c": 8})
    with tmpfs(tmp_path / "small", size="2m", read_only=read_only) as data:
        live = msgspec.structs.replace(settings, data_dir=str(data))
        async with running(live):
            accepted, _ = await create(
                nc, folder, resize_width=256, resize_height=256, encoding="none"
            )
            assert accepted is not None
            events = await wait_terminal(js, accepted.id, timeout=60)
            failed = events[-1]
            assert isinstance(failed, DatasetFailed), events
            build = data / "datasets" / "jobs" / accepted.id
            path = data / where.format(id=accepted.id)
            assert failed.error == f"{reason} writing {path} on node {socket.gethostname()}"
            assert not build.exists()
            assert not [n for n in await blob_names(js) if n.startswith(f"{accepted.id}/")]
            assert (await settled(js)).num_redelivered == 0
            _, rejected = await request(
                nc,
                subjects.CMD_DATASETS_ABORT,
                AbortDataset(dataset_id=accepted.id, principal=ALICE),
            )
            assert rejected is not None and rejected.code == 403, rejected
