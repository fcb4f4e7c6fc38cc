"""What the launcher keeps private: credentials per service, owner-only files, a one-time link."""

from __future__ import annotations

import asyncio
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import nats
import pytest

from digits_cli import nats as embedded
from digits_cli.__main__ import main
from digits_cli.launcher import Child, Launcher
from digits_cli.settings import Settings, get_settings
from digits_proto.permissions import ALL_STREAMS as TABLE_STREAMS
from digits_proto.runtime import CREDS_ENV, credentials_for

FAKES = {"fake-a": "tests.cli.fake_service"}


@contextmanager
def running(data_dir: Path, nats_url: str = "") -> Iterator[tuple[Launcher, list[str]]]:
    """A launcher with one fake service, until its ready line is printed; stopped after."""
    lines: list[str] = []
    settings = Settings(data_dir=str(data_dir), port=0, ready_timeout=30, nats_url=nats_url)
    echo = lambda *a, **_: lines.append(" ".join(map(str, a)))  # noqa: E731
    launcher = Launcher(settings, echo=echo, modules=FAKES)
    runner = threading.Thread(target=launcher.run, daemon=True)
    runner.start()
    deadline = time.monotonic() + 30
    while not any("DIGITS is ready" in line for line in lines) and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        assert any("DIGITS is ready" in line for line in lines), lines
        yield launcher, lines
    finally:
        launcher.stopping = True
        runner.join(timeout=30)


def _private(path: Path) -> bool:
    return stat.S_IMODE(path.stat().st_mode) & 0o077 == 0


@pytest.mark.timeout(60)
async def test_the_data_dir_credentials_config_and_logs_are_the_owners_only(tmp_path: Path) -> None:
    """Even a data dir left 0755 by an older version ends up 0700; nothing under it is shared."""
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    with running(data) as (launcher, _):
        assert stat.S_IMODE(data.stat().st_mode) == 0o700
        creds = data / "nats" / "creds"
        assert stat.S_IMODE(creds.stat().st_mode) == 0o700
        for name in ("digits-admin", "digits-gateway", "digits-trainer", "digits-gpu-broker"):
            assert stat.S_IMODE((creds / f"{name}.json").stat().st_mode) == 0o600
        assert stat.S_IMODE((data / "nats" / "nats.conf").stat().st_mode) == 0o600
        everything = list(data.rglob("*"))
        assert any(p.suffix == ".log" for p in everything)
        shared = [p for p in everything if not _private(p)]
        assert shared == [], shared
        # The dataset root: beside the data directory, created empty, never the data dir.
        assert (tmp_path / "datasets").is_dir() and not any((tmp_path / "datasets").iterdir())
        # The config holds no password, only bcrypt hashes.
        admin = credentials_for(embedded.ADMIN, str(creds))
        assert admin is not None and admin.password not in (data / "nats" / "nats.conf").read_text()
        # A raw client (the uid-nobody script) gets nowhere.
        with pytest.raises(nats.errors.Error, match="Authorization Violation"):
            await nats.connect(launcher.nats_url, allow_reconnect=False)


@pytest.mark.timeout(60)
def test_each_service_gets_only_its_own_credentials(tmp_path: Path) -> None:
    """The trainer's environment names the trainer's file; an unknown module gets none."""
    with running(tmp_path / "data") as (launcher, _):
        trainer = launcher._env(Child("trainer", 1))
        assert trainer[CREDS_ENV].endswith("digits-trainer.json")
        creds = credentials_for("digits-trainer", trainer[CREDS_ENV])
        assert creds is not None and creds.user == "digits-trainer"
        assert CREDS_ENV not in launcher._env(launcher.children[0])
        # Credentials survive a restart: a running server's users stay valid.
        again = embedded.credentials(launcher.data_dir / "nats" / "creds")
        assert again["digits-trainer"] == creds


@pytest.mark.timeout(60)
def test_a_sign_in_token_left_by_the_gateway_is_printed_once_as_a_link(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "signin-token").write_text("t0k3n\n")
    with running(data) as (_, lines):
        ready = next(line for line in lines if "DIGITS is ready" in line)
        assert "/login?token=t0k3n" in ready
        assert not (data / "signin-token").exists()
    with running(data) as (_, lines):
        ready = next(line for line in lines if "DIGITS is ready" in line)
        assert "login?token" not in ready


def test_nats_config_prints_a_config_nats_server_accepts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`digits nats-config` for an operator: stdout or a file, valid for `nats-server -t`."""
    creds = tmp_path / "creds"
    assert main(["nats-config", "--creds", str(creds), "--store", str(tmp_path / "js")]) == 0
    printed = capsys.readouterr().out
    assert '"digits-trainer"' in printed and "digits.evt.models.>" in printed
    out = tmp_path / "nats.conf"
    assert main(["nats-config", "--creds", str(creds), "--out", str(out)]) == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert sorted(p.name for p in creds.iterdir()) == sorted(
        f"{u}.json" for u in (*embedded.TABLE, embedded.ADMIN)
    )
    for conf in (out, tmp_path / "printed.conf"):
        if conf.name == "printed.conf":
            conf.write_text(printed)
        checked = subprocess.run(
            [embedded.binary(), "-c", str(conf), "-t"], capture_output=True, text=True
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr


def test_no_service_reads_datasets_from_the_data_directory_by_default(tmp_path: Path) -> None:
    """The launcher's and the datasets service's default data root: `datasets/` beside it."""
    from digits_datasets.settings import Settings as DatasetsSettings

    data = tmp_path / "data"
    beside = str(tmp_path / "datasets")
    assert Settings(data_dir=str(data)).roots == [beside]
    assert DatasetsSettings(data_dir=str(data)).roots() == [beside]


async def test_nats_provision_creates_every_stream_as_the_admin(
    nats_url: str, nats_creds: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """External mode: `digits nats-provision` with digits-admin's file; a service user cannot."""
    plain = "nats://" + nats_url.rsplit("@", 1)[-1]
    monkeypatch.setenv("DIGITS_NATS_URL", plain)
    get_settings.cache_clear()
    monkeypatch.setenv(CREDS_ENV, str(nats_creds / "digits-trainer.json"))
    with pytest.raises(SystemExit, match="digits-admin"):
        await asyncio.to_thread(main, ["nats-provision"])
    monkeypatch.setenv(CREDS_ENV, str(nats_creds / "digits-admin.json"))
    assert await asyncio.to_thread(main, ["nats-provision"]) == 0
    get_settings.cache_clear()
    client = await nats.connect(nats_url)
    try:
        names = await client.jetstream().streams_info()
        assert {s.config.name for s in names} >= {*TABLE_STREAMS}
    finally:
        await client.close()


@pytest.mark.timeout(60)
async def test_external_mode_provisions_with_the_admin_file_of_a_creds_folder(
    tmp_path: Path, nats_url: str, nats_creds: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DIGITS_NATS_URL + a DIGITS_NATS_CREDS folder: the launcher creates the streams as
    digits-admin before the services start and passes the folder on (each reads its own)."""
    plain = "nats://" + nats_url.rsplit("@", 1)[-1]
    monkeypatch.setenv(CREDS_ENV, str(nats_creds))
    with running(tmp_path / "data", nats_url=plain) as (launcher, _):
        assert launcher.bus is None  # nothing embedded
        assert launcher._env(Child("trainer", 1))[CREDS_ENV] == str(nats_creds)
        client = await nats.connect(nats_url)
        try:
            found = {info.config.name for info in await client.jetstream().streams_info()}
            assert found >= set(TABLE_STREAMS)
        finally:
            await client.close()
