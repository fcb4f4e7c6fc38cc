"""A service killed with SIGKILL leaves no process of its own behind: each is started as a real
process (`python -m ...`) on a real nats-server, made to start its children (build workers, a
confined training child, the warm sandbox child), then `kill -9`ed; every process it started is
gone within seconds (no psutil here: /proc, with each pid's start time against pid reuse)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import msgspec
import pytest
from PIL import Image

from digits_proto import codec, subjects
from digits_proto.datasets import CreateDataset, DatasetSpec
from digits_proto.gpus import Device, LeaseAccepted
from digits_proto.runtime import EventStore, request
from tests.conftest import free_port
from tests.fakes.principals import ALICE
from tests.processes import assert_all_end, command_of, descendants
from tests.trainer.test_service import FakeBroker, add_dataset, create, wait_for_progress

pytestmark = pytest.mark.timeout(240)


def start(module: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`python -m module` with `env` added; returns once its /ready says 200 (its endpoints
    answer: /health says 200 as soon as it runs)."""
    port = free_port()
    env = {**os.environ, **env, f"DIGITS_{module.removeprefix('digits_').upper()}_PORT": str(port)}
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", module], env=env, stdout=out, stderr=out)
    deadline = time.monotonic() + 90
    while True:
        assert proc.poll() is None, f"{module} exited {proc.returncode}: {log.read_text()[-2000:]}"
        assert time.monotonic() < deadline, f"{module} not healthy: {log.read_text()[-2000:]}"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.1)


async def running(root: int, needles: list[str], timeout: float = 60.0) -> dict[int, int]:
    """The processes below `root` once each of `needles` is in one's command line (a warm
    child starts beside the service's start; a confined one execs once its sandbox is set)."""
    deadline = time.monotonic() + timeout
    while True:
        found = descendants(root)
        commands = [command_of(p) for p in found]
        if all(any(n in c for c in commands) for n in needles):
            return found
        assert time.monotonic() < deadline, (needles, commands)
        await asyncio.sleep(0.1)


def kill_hard(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=10) == -signal.SIGKILL


def image_folder(root: Path, per_class: int) -> Path:
    """Three classes of `per_class` copies of one 256×256 PNG each: cheap to write, each copy
    is still decoded and resized by a build worker."""
    for i, name in enumerate(("red", "green", "blue")):
        folder = root / name
        folder.mkdir(parents=True)
        color = [0, 0, 0]
        color[i] = 220
        Image.new("RGB", (256, 256), tuple(color)).save(folder / "0.png")
        for n in range(1, per_class):
            shutil.copyfile(folder / "0.png", folder / f"{n}.png")
    return root


def cpu_ticks(pids: list[int]) -> int:
    """User + system CPU time the processes have used so far (clock ticks)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total


async def packing(js, dataset_id: str, workers: list[int], timeout: float = 60.0) -> None:
    """Until the build packs images: its folder is parsed and the workers use CPU (a second of
    it past their warm-up); fails if it was built already (nothing would be mid-build)."""
    store = EventStore(js, subjects.STREAM_DATASETS, codec.dataset_events)
    deadline = time.monotonic() + timeout
    idle = cpu_ticks(workers)
    while True:
        events, _ = await store.load(subjects.dataset_events(dataset_id))
        kinds = [type(e).__name__ for e in events]
        assert "DatasetBuilt" not in kinds and "DatasetFailed" not in kinds, kinds
        if "DatasetFolderParsed" in kinds and cpu_ticks(workers) - idle > os.sysconf("SC_CLK_TCK"):
            return
        assert time.monotonic() < deadline, kinds
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
async def test_a_stopped_datasets_service_leaves_no_build_worker(nats_url, nc, js, tmp_path, sig):
    """kill -9 of the datasets service mid-build: its build workers (and multiprocessing's
    resource tracker) end with it; a SIGTERM mid-build: it stops them, then exits 0."""
    images = image_folder(tmp_path / "images", per_class=1500)
    env = {
        "DIGITS_NATS_URL": nats_url,
        "DIGITS_DATA_DIR": str(tmp_path / "data"),
        "DIGITS_DATA_ROOTS": str(images),
        "DIGITS_DATASETS_BUILD_WORKERS": "2",
        "DIGITS_DATASETS_CHUNK_SIZE": "8",
    }
    proc = start("digits_datasets", env, tmp_path / "datasets.log")
    try:
        children = descendants(proc.pid)
        workers = [p for p in children if "spawn_main" in command_of(p)]
        # At least one: a pool only spawns another worker when none is idle at a submit.
        assert workers, [command_of(p) for p in children]
        spec = DatasetSpec(folder_train=str(images), resize_width=64, resize_height=64)
        command = CreateDataset(name="big", spec=spec, principal=ALICE)
        body, rejected = await request(nc, subjects.CMD_DATASETS_CREATE, command)
        assert rejected is None, rejected
        await packing(js, codec.command_reply.decode(body).id, workers)
        children = descendants(proc.pid)  # the workers the build started too
        proc.send_signal(sig)
        assert proc.wait(timeout=60) == (0 if sig == signal.SIGTERM else -sig)
        assert_all_end(children)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("sandbox", ["bwrap", "off"])
async def test_a_killed_trainer_leaves_no_training_or_sandbox_child(
    nats_url, nc, js, tmp_path, sandbox
):
    """kill -9 of the trainer mid-training: the training child (begun as the spare warmed for
    the node's last lease) and the warm sandbox child end with it; confined, bwrap and every
    process of its sandbox too."""
    if sandbox == "bwrap" and shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is not installed")
    await FakeBroker().serve(nc)
    dataset_id, _ = await add_dataset(js, tmp_path / "toy")
    data = tmp_path / "data"
    (data / "trainer").mkdir(parents=True)
    # The node's last lease (what FakeBroker grants): a spare child is warmed for it at start.
    last = LeaseAccepted(
        lease_id="earlier",
        node_id="test-node",
        devices=[Device(device_id="test-node/cpu0", kind="cpu", index=0)],
        threads=2,
        ttl_seconds=1.5,
    )
    (data / "trainer" / "spare-lease.json").write_bytes(msgspec.json.encode(last))
    env = {"DIGITS_NATS_URL": nats_url, "DIGITS_DATA_DIR": str(data)}
    env["DIGITS_TRAINER_SANDBOX"] = sandbox
    proc = start("digits_trainer", env, tmp_path / "trainer.log")
    try:
        reply = await create(nc, dataset_id, train_epochs=50)
        await wait_for_progress(js, reply.id, timeout=120)
        children = await running(proc.pid, ["digits_trainer.child", "digits_trainer.sandbox"])
        commands = [command_of(p) for p in children]
        assert any("bwrap" in c for c in commands) == (sandbox == "bwrap"), commands
        kill_hard(proc)
        assert_all_end(children)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
