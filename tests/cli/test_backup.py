"""`digits backup` / `digits restore` against the data directory's real embedded nats-server."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import nats
import pytest
from nats.js.errors import BadRequestError

from digits_cli import backup as ops
from digits_cli.launcher import Launcher
from digits_cli.settings import Settings
from digits_cli.target import Target, hold_store, open_target
from digits_proto import subjects
from digits_proto.runtime import NatsCredentials, credentials_for, ensure_streams

SUBJECT = subjects.model_events("20260101-000000-abcd")
BLOB = os.urandom(1_500_000)  # incompressible: its snapshot spans several chunks


def settings_for(folder: Path) -> Settings:
    """A system whose data directory is `folder` (embedded NATS: no DIGITS_NATS_URL)."""
    return Settings(data_dir=str(folder))


async def _admin(target: Target) -> nats.NATS:
    return await nats.connect(target.url, user=target.admin.user, password=target.admin.password)


async def _seed(target: Target, round_: int = 0) -> None:
    """Every kind of state: events with headers, a KV entry, an object, a durable consumer."""
    nc = await _admin(target)
    js = nc.jetstream()
    await ensure_streams(js)
    for i in range(5):
        await js.publish(SUBJECT, f"event {i}".encode(), headers={"Nats-Msg-Id": f"r{round_}e{i}"})
    await js.publish(subjects.model_metrics("m1"), b"metric")
    await (await js.key_value(subjects.KV_QUEUE)).put("next", b"20260101-000000-abcd")
    await (await js.object_store(subjects.BUCKET_MODELS)).put("m1/snapshot_1.params", BLOB)
    # A stream emptied by a purge still counts on from its last sequence.
    await js.publish(subjects.gpu_events("node-1"), b"gone")
    await js.purge_stream(subjects.STREAM_GPUS)
    await nc.close()


async def _state(target: Target) -> dict[str, tuple[int, int]]:
    """Each stream's message count and last sequence."""
    nc = await _admin(target)
    infos = await nc.jetstream().streams_info()
    await nc.close()
    return {i.config.name: (i.state.messages, i.state.last_seq) for i in infos}


def test_backup_of_a_running_system_restores_into_a_wiped_one_with_every_sequence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Streams, headers, KV, objects come back with their sequences; the read model is deleted."""
    old, new, saved = settings_for(tmp_path / "old"), settings_for(tmp_path / "new"), tmp_path / "b"
    with open_target(old, create=True) as running:
        asyncio.run(_seed(running))
        before = asyncio.run(_state(running))
        assert ops.backup(old, saved) == 0  # finds the server running on the data dir's port
    assert (saved / ops.MANIFEST).is_file() and oct(saved.stat().st_mode & 0o777) == "0o700"
    assert "100%" in capsys.readouterr().err
    read_model = tmp_path / "new" / "gateway" / "readmodel.duckdb"
    read_model.parent.mkdir(parents=True)
    read_model.write_bytes(b"stale")

    assert ops.restore(new, saved, force=False) == 0  # starts and stops its own server

    assert not read_model.exists()
    with open_target(new, create=False) as target:
        assert asyncio.run(_state(target)) == before
        assert before[subjects.STREAM_GPUS] == (0, 1)
        asyncio.run(_check_restored(target))


async def _check_restored(target: Target) -> None:
    nc = await _admin(target)
    js = nc.jetstream()
    msg = await js.get_msg(subjects.STREAM_MODELS, 3)
    assert (msg.subject, msg.data, msg.headers["Nats-Msg-Id"]) == (SUBJECT, b"event 2", "r0e2")
    assert (await (await js.key_value(subjects.KV_QUEUE)).get("next")).value == (
        b"20260101-000000-abcd"
    )
    assert (
        await (await js.object_store(subjects.BUCKET_MODELS)).get("m1/snapshot_1.params")
    ).data == BLOB
    # Optimistic concurrency still compares with the sequences the events had.
    last = (await js.get_last_msg(subjects.STREAM_MODELS, SUBJECT)).seq
    with pytest.raises(BadRequestError):
        await js.publish(SUBJECT, b"stale", headers={"Nats-Expected-Last-Subject-Sequence": "1"})
    ack = await js.publish(
        SUBJECT, b"next", headers={"Nats-Expected-Last-Subject-Sequence": str(last)}
    )
    assert ack.seq == last + 1
    await nc.close()


def test_restore_refuses_a_system_holding_messages_unless_forced(tmp_path: Path) -> None:
    """A non-empty system is named and left alone; --force replaces its streams with the backup."""
    settings, saved = settings_for(tmp_path / "data"), tmp_path / "b"
    with open_target(settings, create=True) as target:
        asyncio.run(_seed(target))
    assert ops.backup(settings, saved) == 0  # a stopped system: its server started for the backup
    with open_target(settings, create=False) as target:
        asyncio.run(_seed(target, round_=1))  # five more events after the backup
        grown = asyncio.run(_state(target))[subjects.STREAM_MODELS]
    assert grown == (10, 10)

    with pytest.raises(SystemExit, match=r"not empty.*DIGITS_MODELS.*--force"):
        ops.restore(settings, saved, force=False)
    with open_target(settings, create=False) as target:
        assert asyncio.run(_state(target))[subjects.STREAM_MODELS] == grown

    assert ops.restore(settings, saved, force=True) == 0
    with open_target(settings, create=False) as target:
        assert asyncio.run(_state(target))[subjects.STREAM_MODELS] == (5, 5)


def test_restore_refuses_a_running_system(tmp_path: Path) -> None:
    """Restoring under running services would pull streams from under them: stop first."""
    settings, saved = settings_for(tmp_path / "data"), tmp_path / "b"
    with open_target(settings, create=True) as target:
        asyncio.run(_seed(target))
        ops.backup(settings, saved)
        with pytest.raises(SystemExit, match="is running: stop it"):
            ops.restore(settings, saved, force=True)


def test_a_damaged_or_unfinished_backup_is_refused_before_anything_changes(
    tmp_path: Path,
) -> None:
    """Each file is checked against the manifest's digest; no manifest means unfinished."""
    settings, saved = settings_for(tmp_path / "data"), tmp_path / "b"
    with open_target(settings, create=True) as target:
        asyncio.run(_seed(target))
    ops.backup(settings, saved)
    target_dir = settings_for(tmp_path / "other")
    damaged = saved / f"OBJ_{subjects.BUCKET_MODELS}.tar.s2"
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    with pytest.raises(SystemExit, match=r"backup damaged: .*OBJ_digits-models"):
        ops.restore(target_dir, saved, force=False)
    (saved / ops.MANIFEST).unlink()
    with pytest.raises(SystemExit, match="did not finish"):
        ops.restore(target_dir, saved, force=False)
    assert not (tmp_path / "other").exists()  # refused before a server was started there


def test_backup_refuses_a_used_folder_and_a_data_dir_without_a_system(tmp_path: Path) -> None:
    """A backup never mixes into another folder's files, nor backs up a system that never ran."""
    used = tmp_path / "used"
    used.mkdir()
    (used / "notes.txt").write_text("mine")
    with pytest.raises(SystemExit, match="not empty"):
        ops.backup(settings_for(tmp_path / "data"), used)
    with pytest.raises(SystemExit, match="no DIGITS system in"):
        ops.backup(settings_for(tmp_path / "nothing"), tmp_path / "b")


def test_a_data_dir_held_by_a_restore_is_refused_to_another_digits_process(
    tmp_path: Path,
) -> None:
    """nats-server does not lock its store: the verbs and the launcher claim it themselves."""
    settings = settings_for(tmp_path / "data")
    with open_target(settings, create=True):
        with pytest.raises(SystemExit, match="in use by another digits process"):
            hold_store(tmp_path / "data")
        with pytest.raises(SystemExit, match="in use by another digits process"):
            Launcher(settings, echo=lambda *a, **_: None)._start_nats()  # `digits run` meanwhile
    hold_store(tmp_path / "data").close()  # released with the server


def test_a_cluster_backup_restores_on_the_embedded_single_server(tmp_path: Path) -> None:
    """Streams saved with three replicas come back on one server with one."""
    settings, saved = settings_for(tmp_path / "data"), tmp_path / "b"
    with open_target(settings, create=True) as target:
        asyncio.run(_seed(target))
    ops.backup(settings, saved)
    manifest = json.loads((saved / ops.MANIFEST).read_text())
    for entry in manifest["streams"]:
        entry["snapshot"]["config"]["num_replicas"] = 3  # as a 3-node cluster's R3 streams
    (saved / ops.MANIFEST).write_text(json.dumps(manifest))
    assert ops.restore(settings_for(tmp_path / "single"), saved, force=False) == 0
    with open_target(settings_for(tmp_path / "single"), create=False) as target:
        assert asyncio.run(_state(target))[subjects.STREAM_MODELS] == (5, 5)


def test_an_external_nats_is_backed_up_and_restored_as_digits_admin(
    tmp_path: Path, nats_url: str, nats_creds: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DIGITS_NATS_URL + DIGITS_NATS_CREDS (the admin's): the same round trip, no data dir."""
    external = Settings(nats_url="nats://" + nats_url.rsplit("@", 1)[1])
    target = Target(external.nats_url, session_admin(nats_creds), "test")
    asyncio.run(_seed(target))
    before = asyncio.run(_state(target))
    monkeypatch.setenv("DIGITS_NATS_CREDS", str(nats_creds))
    assert ops.backup(external, tmp_path / "b") == 0
    asyncio.run(_seed(target, round_=1))
    monkeypatch.setenv("DIGITS_NATS_CREDS", str(nats_creds))
    assert ops.restore(external, tmp_path / "b", force=True) == 0
    assert asyncio.run(_state(target)) == before
    monkeypatch.delenv("DIGITS_NATS_CREDS", raising=False)
    with pytest.raises(SystemExit, match="DIGITS_NATS_CREDS must name digits-admin"):
        ops.backup(external, tmp_path / "c")


def session_admin(folder: Path) -> NatsCredentials:
    """The test servers' admin (the credentials folder holds every user's file)."""
    admin = credentials_for("digits-admin", str(folder))
    assert admin is not None
    return admin
