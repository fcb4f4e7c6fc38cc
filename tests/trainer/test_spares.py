"""The spare training child: started ahead with MXNet imported, handed its job on stdin."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec
import pytest

from digits_proto.gpus import Device, LeaseAccepted
from digits_trainer import reports
from digits_trainer.config import SplitFiles, write_config
from digits_trainer.confine import Confiner, Limits
from digits_trainer.process import child_environment
from digits_trainer.spares import Spares
from digits_trainer.staging import Inputs
from tests.trainer.test_training import config_for
from tests.trainer.toy import write_dataset

pytestmark = pytest.mark.timeout(60)


def lease(threads: int) -> LeaseAccepted:
    """A CPU lease with `threads` OMP threads."""
    cpu = Device(device_id="n/cpu0", kind="cpu", index=0)
    return LeaseAccepted(lease_id="l", node_id="n", devices=[cpu], threads=threads, ttl_seconds=9)


def job(tmp_path: Path, name: str) -> tuple[Path, Path]:
    """A job folder with a short toy training config; (config, folder)."""
    folder = tmp_path / name
    folder.mkdir()
    files = write_dataset(tmp_path / f"{name}-data", per_class=10, val_per_class=2)
    config = config_for(files, folder, train_epochs=1)
    write_config(msgspec.structs.replace(config, model_id=name), str(folder / "config.json"))
    return folder / "config.json", folder


async def reports_of(child) -> list[reports.Report]:
    """Every report a child writes until it exits."""
    assert child.stdout is not None
    out = [reports.decoder.decode(line) async for line in child.stdout]
    await child.wait()
    return out


async def test_a_spare_trains_the_job_handed_to_it_and_the_next_spare_starts_after_it(tmp_path):
    """The spare (ready first) gets the job: it trains to done in the job's folder with its
    log in the job's train.log; no other spare imports beside it; once it ended a new spare
    with the same environment waits, remembered on disk, and a new Spares warms one from that
    memory."""
    memory = tmp_path / "spare-lease.json"
    spares = Spares(memory)
    env = child_environment(lease(1))
    try:
        await spares.refill(lease(1))
        assert await spares.ready()
        assert spares.spare is not None
        spare_pid = spares.spare[1].process.pid
        config, folder = job(tmp_path, "first")
        child = await spares.start(config, folder, lease(1))
        assert child.pid == spare_pid
        assert spares.spare is None  # not while the job trains
        done = await reports_of(child)
        assert isinstance(done[-1], reports.DoneReport) and child.returncode == 0
        await spares.refill(lease(1))  # as Attempt.supervise does once its child ended
        assert os.readlink(f"/proc/{spares.spare[1].process.pid}/cwd") != str(folder)
        assert "data loaded" in (folder / "train.log").read_text()
        assert spares.spare is not None and spares.spare[0] == env
        assert msgspec.json.decode(memory.read_bytes(), type=LeaseAccepted) == lease(1)
    finally:
        await spares.close()
    again = Spares(memory)
    try:
        await again.warm()
        assert again.spare is not None and again.spare[0] == env and await again.ready()
    finally:
        await again.close()
    assert again.spare is None


async def test_a_spare_for_another_lease_or_a_dead_one_gives_way_to_a_fresh_child(tmp_path):
    """A spare started for other threads is discarded and the job starts a fresh child (in the
    job's folder); so it does when the spare died."""
    spares = Spares()
    try:
        await spares.refill(lease(2))
        assert spares.spare is not None
        other = spares.spare[1].process
        config, folder = job(tmp_path, "second")
        child = await spares.start(config, folder, lease(1))
        assert other.returncode is not None  # killed
        assert child.pid != other.pid
        assert isinstance((await reports_of(child))[-1], reports.DoneReport)
        assert "data loaded" in (folder / "train.log").read_text()  # it worked in the job's

        await spares.refill(lease(1))
        assert spares.spare is not None
        dead = spares.spare[1].process
        dead.kill()
        await dead.wait()
        config, folder = job(tmp_path, "third")
        child = await spares.start(config, folder, lease(1))
        assert child.pid != dead.pid
        assert isinstance((await reports_of(child))[-1], reports.DoneReport)
    finally:
        await spares.close()


async def test_a_confined_spare_takes_its_job_folder_and_trains_as_nobody(tmp_path):
    """Under bwrap the spare starts in a folder of its own; the hand-over moves the staged job
    (log, config, inputs) into it and renames it to the job's: the spare trains there as uid
    65534, its lines after the job's header, its snapshot in work/, no spare folder left."""
    data = tmp_path / "data"
    confiner = Confiner("bwrap", "/usr/bin/bwrap", data)
    assert await confiner.probe(), confiner.problem
    spares = Spares(data / "trainer" / "spare-lease.json", True, confiner, Limits(processes=1024))
    try:
        await spares.refill(lease(1))
        assert await spares.ready()
        folder = data / "trainer" / "jobs" / "job1"
        folder.mkdir(parents=True)
        confiner.prepare(folder)
        inputs = Inputs(folder, confiner)
        files = write_dataset(tmp_path / "toy", per_class=10, val_per_class=2)
        config = config_for(files, folder, train_epochs=1)
        split = {
            s: SplitFiles(rec=inputs.add(files[f"{s}.rec"]), idx=inputs.add(files[f"{s}.idx"]))
            for s in ("train", "val")
        }
        config = msgspec.structs.replace(
            config,
            train=split["train"],
            val=split["val"],
            mean=inputs.add(files["mean.npy"]),
            snapshot_dir="work/snapshots",
        )
        write_config(config, str(folder / "config.json"))
        confiner.share(folder / "config.json")
        (folder / "train.log").write_text("the job's header\n")
        child = await spares.start(folder / "config.json", folder, lease(1))
        done = await reports_of(child)
        assert isinstance(done[-1], reports.DoneReport) and child.returncode == 0
        log = (folder / "train.log").read_text()
        assert log.startswith("the job's header\n") and "data loaded" in log
        snapshot = next(r for r in done if isinstance(r, reports.SnapshotReport))
        assert snapshot.params.startswith("work/snapshots/")
        assert (folder / snapshot.params).stat().st_uid == 65534
        assert not list((data / "trainer" / "spares").iterdir())
    finally:
        await spares.close()


async def test_with_jobs_queued_the_next_spare_starts_as_a_job_takes_one(tmp_path):
    """While `eager` says jobs wait for devices, a job that takes the spare leaves a new one
    importing beside it (the next lease follows at once); once the queue is empty, none."""
    queued = [True]
    spares = Spares()
    spares.eager = lambda: queued[0]
    try:
        await spares.refill(lease(1))
        assert spares.spare is not None
        taken = spares.spare[1].process.pid
        config, folder = job(tmp_path, "first")
        child = await spares.start(config, folder, lease(1))
        assert child.pid == taken
        assert spares.spare is not None and spares.spare[1].process.pid != taken
        following = spares.spare[1].process.pid
        assert isinstance((await reports_of(child))[-1], reports.DoneReport)
        await spares.refill(lease(1))  # as Attempt.supervise does: the live spare is kept
        assert spares.spare is not None and spares.spare[1].process.pid == following
        queued[0] = False
        config, folder = job(tmp_path, "second")
        child = await spares.start(config, folder, lease(1))
        assert child.pid == following and spares.spare is None
        assert isinstance((await reports_of(child))[-1], reports.DoneReport)
    finally:
        await spares.close()
