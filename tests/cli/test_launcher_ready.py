"""The launcher waits on each service's /ready and, giving up, says what each one waits for."""

from __future__ import annotations

from pathlib import Path

import pytest

from digits_cli.launcher import Child, Launcher
from digits_cli.settings import Settings


def test_services_are_polled_on_ready_and_the_gateway_on_health(monkeypatch) -> None:
    """/ready for a service (its /health only says it is alive); DIGITS_<NAME>_HOST is used
    unless it is a wildcard address."""
    monkeypatch.delenv("DIGITS_TRAINER_HOST", raising=False)
    assert Child("trainer", 81).health_url == "http://127.0.0.1:81/ready"
    assert Child("gateway", 80).health_url == "http://127.0.0.1:80/health"
    monkeypatch.setenv("DIGITS_TRAINER_HOST", "0.0.0.0")
    assert Child("trainer", 81).health_url == "http://127.0.0.1:81/ready"
    monkeypatch.setenv("DIGITS_TRAINER_HOST", "10.1.2.3")
    assert Child("trainer", 81).health_url == "http://10.1.2.3:81/ready"


@pytest.mark.timeout(60)
def test_giving_up_names_what_a_service_waits_for(tmp_path: Path, monkeypatch) -> None:
    """A service whose /ready stays 503: the launcher stops after ready_timeout and quotes
    the reason from the 503 body."""
    monkeypatch.setenv("FAKE_NOT_READY", "JetStream: not reachable (test)")
    lines: list[str] = []
    settings = Settings(data_dir=str(tmp_path / "data"), port=0, ready_timeout=12)
    launcher = Launcher(
        settings,
        echo=lambda *a, **_: lines.append(" ".join(map(str, a))),
        modules={"fake-a": "tests.cli.fake_service"},
    )
    assert launcher.run() == 1
    message = next(line for line in lines if "not ready after" in line)
    assert "fake-a (JetStream: not reachable (test))" in message, lines
