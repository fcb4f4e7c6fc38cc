"""compose.yaml runs the same system as containers: it parses and names every service."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_compose_names_nats_and_the_five_services_with_the_same_settings() -> None:
    """Every service is there, points at the nats service and shares the data settings."""
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"nats", "gateway", "datasets", "trainer", "inference", "gpu-broker"}
    for name in ("gateway", "datasets", "trainer", "inference", "gpu-broker"):
        env = services[name]["environment"]
        assert env["DIGITS_NATS_URL"] == "nats://nats:4222"
        assert env["DIGITS_DATA_DIR"] == "/data"
        module = "digits_" + name.replace("-", "_")
        assert services[name]["command"] == ["python", "-m", module]
    assert "-js" in services["nats"]["command"]
    reservations = services["trainer"]["deploy"]["resources"]["reservations"]["devices"]
    assert reservations[0]["capabilities"] == ["gpu"]
