"""The service survives what must not stop it: crashes inside a build, restarts, SIGTERM."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import structlog

from digits_datasets import parse
from digits_datasets.settings import Settings
from digits_proto import codec, subjects
from digits_proto.datasets import DatasetCreated, DatasetFailed, DatasetSpec, DeleteDataset
from digits_proto.models import ModelCreated, TrainSpec
from digits_proto.runtime import EventStore, request
from tests.conftest import free_port
from tests.fakes.principals import ALICE

from .conftest import make_folder, running
from .test_service import create, wait_terminal


async def test_unexpected_error_fails_the_job_and_acks_the_ticket(
    service: Settings, nc, js, images: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash inside the build becomes DatasetFailed with an error id, its detail only in the
    log; no redelivery."""

    def boom(folder, roots):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(parse, "scan_folder", boom)
    accepted, _ = await create(nc, make_folder(images / "x", {"a_cat": 3, "b": 3}))
    assert accepted is not None
    with structlog.testing.capture_logs() as logs:
        failed = (await wait_terminal(js, accepted.id))[-1]
    assert isinstance(failed, DatasetFailed)
    found = re.fullmatch(r"internal error, id (\w{12}); see the digits-datasets log", failed.error)
    assert found, failed.error
    logged = [e for e in logs if e.get("error_id") == found.group(1)]
    assert [e["event"] for e in logged] == ["build_failed"] and logged[0]["exc_info"] is True
    # The ticket is acked just after the event is stored: give the ack a moment to land.
    for _ in range(100):
        info = await js.consumer_info(subjects.STREAM_WORK, subjects.CONSUMER_DATASET_BUILDER)
        if info.num_ack_pending == 0:
            break
        await asyncio.sleep(0.05)
    assert info.num_ack_pending == 0 and info.num_pending == 0 and info.num_redelivered == 0


async def test_folder_removed_after_create_fails_with_a_readable_error(
    service: Settings, nc, js, images: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the folder vanished before the build, the job fails naming the folder, not a trace."""

    def vanished(folder, roots):
        raise FileNotFoundError(2, "No such file or directory", folder)

    monkeypatch.setattr(parse, "scan_folder", vanished)
    folder = make_folder(images / "gone", {"a_cat": 3, "b": 3})
    accepted, _ = await create(nc, folder)
    assert accepted is not None
    failed = (await wait_terminal(js, accepted.id))[-1]
    assert isinstance(failed, DatasetFailed)
    assert failed.error == f"Cannot read folder {folder}: No such file or directory"


async def test_model_index_is_rebuilt_from_the_stream_after_a_restart(
    settings: Settings, nc, js
) -> None:
    """A model recorded while the service was down still blocks deleting its dataset."""
    datasets = EventStore(js, subjects.STREAM_DATASETS, codec.dataset_events)
    models = EventStore(js, subjects.STREAM_MODELS, codec.model_events)
    spec = DatasetSpec(folder_train="/nowhere")
    await datasets.append(
        subjects.dataset_events("d-1"),
        [DatasetCreated(dataset_id="d-1", name="d", username="alice", spec=spec)],
        0,
    )
    await models.append(
        subjects.model_events("m-9"),
        [ModelCreated(model_id="m-9", name="m", dataset_id="d-1", spec=TrainSpec())],
        0,
    )
    async with running(settings):
        _, rejected = await request(
            nc, subjects.CMD_DATASETS_DELETE, DeleteDataset(dataset_id="d-1", principal=ALICE)
        )
    assert rejected is not None and rejected.code == 403 and "m-9" in rejected.message


def test_python_m_digits_datasets_serves_health_and_stops_on_sigterm(
    nats_url: str, tmp_path: Path
) -> None:
    """`python -m digits_datasets` answers /health 200 once ready and exits 0 on SIGTERM."""
    port = free_port()
    env = {
        **os.environ,
        "DIGITS_NATS_URL": nats_url,
        "DIGITS_DATA_DIR": str(tmp_path),
        "DIGITS_DATA_ROOTS": str(tmp_path),
        "DIGITS_DATASETS_PORT": str(port),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "digits_datasets"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        status = 0
        while time.monotonic() < deadline and status != 200:
            try:
                status = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code
            except httpx.HTTPError:
                time.sleep(0.1)
        assert status == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=40) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
