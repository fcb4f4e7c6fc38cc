"""A training child's reports name files; the parent reads and deletes only those in work/."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from digits_trainer import reports
from digits_trainer.joblog import JobLog
from digits_trainer.relay import Relay
from digits_trainer.reported import Refused, components, open_reported, remove_reported
from digits_trainer.settings import Settings


class RecordingStore:
    """Records what the relay uploads (path given, bytes read); nothing else is called."""

    def __init__(self) -> None:
        self.uploads: dict[str, bytes] = {}

    async def put_model_file(self, name: str, path: str) -> str:
        with open(path, "rb") as f:
            self.uploads[name] = f.read()
        return name

    async def read_model_file(self, name: str) -> None:
        return None


def job_folder(tmp_path: Path) -> tuple[Path, Path]:
    """A job folder with work/ and, beside it, a victim folder the child must not touch."""
    folder = tmp_path / "jobs" / "job1"
    (folder / "work" / "snapshots" / "1").mkdir(parents=True)
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "secret").write_text("the data directory's secret")
    (victim / "net-symbol.json").write_text("{}")
    return folder, victim


async def relay_lines(folder: Path, lines: list[bytes]) -> tuple[Relay, RecordingStore]:
    """Run a relay over these report lines, as from a child's stdout."""
    store = RecordingStore()
    appended = []

    async def append(event) -> None:
        appended.append(event)

    log = JobLog(store, "job1", folder, 30)  # pyright: ignore[reportArgumentType]
    relay = Relay(store, Settings(), "job1", log, append, folder)  # pyright: ignore[reportArgumentType]
    reader = asyncio.StreamReader()
    for line in lines:
        reader.feed_data(line + b"\n")
    reader.feed_eof()
    await relay.run(reader)
    return relay, store


def snapshot(symbol: str, params: str, state: str) -> bytes:
    report = reports.SnapshotReport(
        epoch=1.0, symbol=symbol, params=params, state=state, input_shape=[1, 8, 8]
    )
    return reports.encoder.encode(report)


@pytest.mark.parametrize(
    "how",
    ["absolute", "dotdot", "symlinked_file", "symlinked_folder", "outside_work"],
)
async def test_a_snapshot_report_outside_work_is_refused_and_nothing_is_deleted(tmp_path, how):
    """Paths to the victim folder: absolute, with '..', through a symlinked file or folder
    inside work/, or in the job folder but not in work/: the relay refuses (the job fails with
    that reason), uploads nothing and the victim's files are all still there."""
    folder, victim = job_folder(tmp_path)
    work = folder / "work"
    (folder / "config.json").write_text("{}")
    paths = {
        "absolute": str(victim / "secret"),
        "dotdot": "work/../../../victim/secret",
        "symlinked_file": "work/snapshots/1/net-symbol.json",
        "symlinked_folder": "work/escape/secret",
        "outside_work": "config.json",
    }
    if how == "symlinked_file":
        os.symlink(victim / "secret", work / "snapshots" / "1" / "net-symbol.json")
    if how == "symlinked_folder":
        os.symlink(victim, work / "escape")
    path = paths[how]
    relay, store = await relay_lines(folder, [snapshot(path, path, path)])
    assert relay.refused and "refused" in relay.error
    assert store.uploads == {}
    assert (victim / "secret").read_text() == "the data directory's secret"
    assert (victim / "net-symbol.json").exists() and (folder / "config.json").exists()


async def test_a_resume_point_through_a_symlink_is_refused_and_its_target_kept(tmp_path):
    """A resume point report whose file is a symlink to the victim: refused, target kept."""
    folder, victim = job_folder(tmp_path)
    (folder / "work" / "resume").mkdir()
    os.symlink(victim / "secret", folder / "work" / "resume" / "point.tar")
    line = reports.encoder.encode(
        reports.ResumePointReport(epoch=1.0, iteration=3, path="work/resume/point.tar")
    )
    relay, store = await relay_lines(folder, [line])
    assert relay.refused and store.uploads == {}
    assert (victim / "secret").exists()


async def test_a_snapshot_in_work_is_uploaded_and_its_files_removed(tmp_path):
    """The ordinary case: three files in work/snapshots/1 are uploaded, then removed with
    their folder; work/ stays."""
    folder, _ = job_folder(tmp_path)
    out = folder / "work" / "snapshots" / "1"
    for name in ("net-symbol.json", "net-0000.params", "snapshot.state"):
        (out / name).write_bytes(name.encode())
    rel = "work/snapshots/1/"
    relay, store = await relay_lines(
        folder,
        [snapshot(rel + "net-symbol.json", rel + "net-0000.params", rel + "snapshot.state")],
    )
    assert not relay.refused, relay.error
    assert store.uploads["job1/snapshot-1.params"] == b"net-0000.params"
    assert not out.exists() and (folder / "work" / "snapshots").is_dir()


def test_reported_paths_are_checked_before_any_file_is_touched(tmp_path):
    """The path rules themselves; a file over the size limit is refused too; removing a
    symlink removes the link, never its target."""
    assert components("/job/work/a/b") == ["a", "b"]
    for bad in (
        "/etc/shadow",
        "work",
        "work/..",
        "inputs/x",
        "/job/../etc/shadow",
        "work/a/../../x",
    ):
        with pytest.raises(Refused):
            components(bad)
    folder, victim = job_folder(tmp_path)
    (folder / "work" / "big").write_bytes(b"x" * 100)
    with pytest.raises(Refused, match="over 10"), open_reported(folder, "work/big", 10):
        pass
    os.symlink(victim / "secret", folder / "work" / "link")
    remove_reported(folder, "work/link")
    assert not (folder / "work" / "link").is_symlink() and (victim / "secret").exists()
