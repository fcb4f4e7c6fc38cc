"""A datasets service killed with SIGKILL mid-build: real `python -m digits_datasets` processes on
one real nats-server.

The other process restarts the build within ack_wait (5 s) plus a fetch and builds it; the
status history says the build restarted after its worker was lost. A build whose service is
killed every time ends Error after max_deliver deliveries, not before, naming the cause.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from nats.js.errors import NotFoundError

from digits_gateway.readmodel import queries
from digits_gateway.readmodel.db import ReadModel
from digits_gateway.readmodel.projectors import datasets as dataset_projector
from digits_proto import subjects
from digits_proto.datasets import DatasetBuildStarted, DatasetBuilt, DatasetFailed

from .conftest import make_folder
from .test_service import create, history, wait_terminal

pytestmark = pytest.mark.timeout(300)


@contextlib.contextmanager
def datasets_process(nats_url: str, data_dir: Path, roots: Path, **env: str) -> Iterator:
    """`python -m digits_datasets` with one build worker; SIGKILLed when the block ends."""
    settings = {
        "DIGITS_NATS_URL": nats_url,
        "DIGITS_DATA_DIR": str(data_dir),
        "DIGITS_DATA_ROOTS": str(roots),
        "DIGITS_DATASETS_PORT": "-1",
        "DIGITS_DATASETS_BUILD_WORKERS": "1",
        "DIGITS_LOG_LEVEL": "warning",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "digits_datasets"], env={**os.environ, **settings, **env}
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


def worker_of(proc: subprocess.Popen) -> str:
    """How a datasets process names itself in DatasetBuildStarted."""
    return f"{socket.gethostname()}:{proc.pid}"


async def consuming(js, pulls: int = 1, timeout: float = 60.0) -> None:
    """Until `pulls` build loops wait for a ticket (started, idle datasets processes)."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(NotFoundError):  # not created yet: the first process starts
            info = await js.consumer_info(subjects.STREAM_WORK, subjects.CONSUMER_DATASET_BUILDER)
            if info.num_waiting >= pulls:
                return
        assert time.monotonic() < deadline, "no datasets process is consuming build tickets"
        await asyncio.sleep(0.1)


async def starts(js, dataset_id: str, count: int, timeout: float = 60.0) -> list:
    """The dataset's events once it has `count` DatasetBuildStarted."""
    deadline = time.monotonic() + timeout
    while True:
        events = await history(js, dataset_id)
        if len([e for e in events if isinstance(e, DatasetBuildStarted)]) >= count:
            return events
        assert time.monotonic() < deadline, [type(e).__name__ for e in events]
        await asyncio.sleep(0.05)


def projected_history(tmp: Path, dataset_id: str, events: list) -> list[tuple[str, str]]:
    """The dataset's (status, note) history rows as the gateway projects them."""
    db = ReadModel(tmp / "readmodel.duckdb")
    try:
        with db.transaction() as tx:
            dataset_projector.apply(tx, list(enumerate(events, start=1)))
        with db.cursor() as cur:
            rows = queries.status_history(cur, dataset_id)
            notes = queries.status_notes(cur, dataset_id)
    finally:
        db.close()
    return [(s, n) for (s, _), n in zip(rows, notes, strict=True)]


async def test_a_killed_builder_s_dataset_is_built_by_the_other_process(
    nats_url, js, nc, tmp_path, images
) -> None:
    """Two processes wait for tickets; the one that starts the build is killed (SIGKILL) at
    once; the other restarts the build within 5 s + a fetch and builds it; the history says
    the build restarted after its worker was lost."""
    folder = make_folder(images / "big", {"a_cat": 700, "b": 700}, size=(64, 64))
    with (
        datasets_process(nats_url, tmp_path / "a", images) as a,
        datasets_process(nats_url, tmp_path / "b", images) as b,
    ):
        await consuming(js, pulls=2)
        accepted, _ = await create(nc, folder, resize_width=64, resize_height=64)
        assert accepted is not None
        events = await starts(js, accepted.id, 1)
        assert not any(isinstance(e, DatasetBuilt) for e in events), "built already"
        [started] = [e for e in events if isinstance(e, DatasetBuildStarted)]
        builder, other = (a, b) if started.worker == worker_of(a) else (b, a)
        builder.kill()
        killed = time.time()
        events = await starts(js, accepted.id, 2, timeout=30)
        first, second = [e for e in events if isinstance(e, DatasetBuildStarted)]
        took = second.occurred_at.timestamp() - killed
        print(f"the build restarted {took:.1f} s after its process was killed")
        assert (first.worker, second.worker) == (worker_of(builder), worker_of(other))
        assert took <= 5.0 + 3.0
        events = await wait_terminal(js, accepted.id, timeout=240)
    assert isinstance(events[-1], DatasetBuilt), events[-1]
    assert projected_history(tmp_path, accepted.id, events) == [
        ("Initialized", ""),
        ("Running", ""),
        ("Running", f"restarted by {worker_of(other)} after the worker was lost"),
        ("Done", ""),
    ]


async def test_a_build_whose_service_is_killed_every_time_ends_error_after_max_deliver(
    nats_url, js, nc, tmp_path, images
) -> None:
    """DIGITS_MAX_DELIVER=2: two processes in turn start the build and are killed (SIGKILL);
    the third does not build: the dataset ends Error naming the cause and the last worker, and
    the ticket is gone (nothing loops)."""
    folder = make_folder(images / "big", {"a_cat": 700, "b": 700}, size=(64, 64))
    env = {"DIGITS_MAX_DELIVER": "2", "DIGITS_DATASETS_ACK_WAIT": "2"}
    accepted, last = None, ""
    for n in (1, 2):
        with datasets_process(nats_url, tmp_path / f"p{n}", images, **env) as proc:
            if accepted is None:  # later processes take the redelivered ticket at once
                await consuming(js)
                accepted, _ = await create(nc, folder, resize_width=64, resize_height=64)
                assert accepted is not None
            events = await starts(js, accepted.id, n)
            assert not any(isinstance(e, DatasetBuilt | DatasetFailed) for e in events)
            proc.kill()
            last = worker_of(proc)
    assert accepted is not None
    with datasets_process(nats_url, tmp_path / "p3", images, **env) as third:
        events = await wait_terminal(js, accepted.id, timeout=60)
        failed = events[-1]
        assert isinstance(failed, DatasetFailed), failed
        assert failed.error == (
            f"the worker was lost 2 times while building this dataset; last on {last}"
        )
        assert len([e for e in events if isinstance(e, DatasetBuildStarted)]) == 2
        deadline = time.monotonic() + 10
        while True:
            info = await js.consumer_info(subjects.STREAM_WORK, subjects.CONSUMER_DATASET_BUILDER)
            if info.num_ack_pending == 0 and info.num_pending == 0:
                break
            assert time.monotonic() < deadline, info
            await asyncio.sleep(0.1)
        assert third.poll() is None
