"""compose.yaml runs the same system as containers: it parses and names every service."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from digits_cli import nats as embedded
from digits_cli.__main__ import main

ROOT = Path(__file__).resolve().parents[2]


def test_compose_names_nats_and_the_five_services_with_the_same_settings() -> None:
    """Every service is there, points at the nats service and shares the data settings."""
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {
        "nats-auth",
        "nats",
        "nats-provision",
        "gateway",
        "datasets",
        "trainer",
        "inference",
        "gpu-broker",
    }
    for name in ("gateway", "datasets", "trainer", "inference", "gpu-broker"):
        env = services[name]["environment"]
        assert env["DIGITS_NATS_URL"] == "nats://nats:4222"
        assert env["DIGITS_DATA_DIR"] == "/data"
        # Each service connects as itself; dataset paths never reach the data directory.
        assert env["DIGITS_NATS_CREDS"] == f"/auth/creds/digits-{name}.json"
        assert "/data" not in env["DIGITS_DATA_ROOTS"].split(":")
        module = "digits_" + name.replace("-", "_")
        assert services[name]["command"] == ["python", "-m", module]
    assert services["nats"]["command"][:2] == ["-c", "/auth/nats.conf"]
    reservations = services["trainer"]["deploy"]["resources"]["reservations"]["devices"]
    assert reservations[0]["capabilities"] == ["gpu"]


def test_compose_renders_a_server_config_nats_server_accepts(tmp_path: Path) -> None:
    """The nats-auth step's own command line (paths moved into tmp) gives a valid config."""
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    command = compose["services"]["nats-auth"]["command"]
    assert command[:3] == ["python", "-m", "digits_cli"]
    args = [a.replace("/auth", str(tmp_path / "auth")) for a in command[3:]]
    args = [a.replace("/data", str(tmp_path / "data")) for a in args]
    (tmp_path / "auth").mkdir()
    assert main(args) == 0
    checked = subprocess.run(
        [embedded.binary(), "-c", str(tmp_path / "auth" / "nats.conf"), "-t"],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert (tmp_path / "auth" / "creds" / "digits-admin.json").is_file()
