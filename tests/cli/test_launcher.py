"""The launcher starts NATS and the services, waits for health, restarts the dead, stops all."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from digits_cli.launcher import Launcher
from digits_cli.settings import Settings
from digits_proto.runtime import connect, credentials_for, env_settings


def test_settings_read_the_shared_digits_variables() -> None:
    """DIGITS_PORT, DIGITS_DATA_DIR and DIGITS_DATA_ROOTS (PATH-like) reach the launcher."""
    env = {"DIGITS_PORT": "5123", "DIGITS_DATA_DIR": "/tmp/d", "DIGITS_DATA_ROOTS": "/a:/b"}
    settings = env_settings(Settings, "launcher", env=env, aliases={"port": "DIGITS_PORT"})
    assert settings.port == 5123 and settings.roots == ["/a", "/b"]
    # Never the data directory itself (logs, credentials, the NATS store): `datasets/` beside it.
    assert Settings(data_dir="/tmp/d").roots == ["/tmp/datasets"]


@pytest.mark.timeout(60)
async def test_launcher_starts_nats_restarts_a_crashed_service_and_stops_everything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A service that crashes at start is restarted; SIGTERM-equivalent stop ends every process."""
    monkeypatch.setenv("CRASH_MARKER", str(tmp_path / "crashed"))
    lines: list[str] = []
    settings = Settings(data_dir=str(tmp_path / "data"), port=0, ready_timeout=30)
    launcher = Launcher(
        settings,
        echo=lambda *a, **_: lines.append(" ".join(map(str, a))),
        modules={"fake-a": "tests.cli.fake_service", "fake-b": "tests.cli.fake_service"},
    )
    runner = threading.Thread(target=launcher.run, daemon=True)
    runner.start()
    deadline = time.monotonic() + 30
    while not any("ready" in line for line in lines) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert any("ready" in line for line in lines), lines
    assert any("restarting" in line for line in lines), lines
    addresses = json.loads((launcher.data_dir / "services.json").read_text())
    ports = {c.name: c.port for c in launcher.children}
    services = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    assert addresses == {**services, "nats-server": launcher.nats_url}
    admin = credentials_for("digits-admin", str(launcher.data_dir / "nats" / "creds"))
    assert admin is not None
    client = await connect(launcher.nats_url, admin.user, admin)
    assert (await client.jetstream().account_info()) is not None
    await client.close()
    procs = [c.proc for c in launcher.children]
    launcher.stopping = True
    runner.join(timeout=30)
    assert all(p is not None and p.poll() is not None for p in procs)
    assert launcher.bus is not None and all(n.proc is None for n in launcher.bus.nodes)
