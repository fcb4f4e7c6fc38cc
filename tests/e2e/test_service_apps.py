"""The launched system: every backend service serves its small HTTP app on 127.0.0.1 (ready,
metrics, OpenAPI), and the operator token is one owner-only file for all of them."""

from __future__ import annotations

import json
import stat

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import System

SERVICES = ("datasets", "gpu-broker", "inference", "trainer")


def http_port(system: System, service: str) -> int:
    """The port a service's app bound, from its `service_started` log line (the launcher
    picks free ports)."""
    for line in reversed((system.data_dir / "logs" / f"{service}.log").read_text().splitlines()):
        if '"service_started"' in line:
            record = json.loads(line[line.index("{") :])
            assert record["http"] == "127.0.0.1"
            return int(record["http_port"])
    raise AssertionError(f"{service} logged no service_started")


def test_every_service_is_ready_with_metrics_and_a_schema(digits_system: System) -> None:
    for service in SERVICES:
        base = f"http://127.0.0.1:{http_port(digits_system, service)}"
        ready = httpx.get(f"{base}/ready", timeout=10)
        assert ready.status_code == 200 and ready.json()["waiting_for"] == [], (service, ready)
        metrics = httpx.get(f"{base}/metrics", timeout=10).text
        families = list(text_string_to_metric_families(metrics))  # raises on malformed text
        assert all(f.documentation for f in families), service
        paths = httpx.get(f"{base}/schema", timeout=10).json()["paths"]
        assert {"/health", "/ready", "/metrics"} <= set(paths), (service, paths)


def test_operations_take_the_shared_owner_only_token(digits_system: System) -> None:
    token_file = digits_system.data_dir / "ops-token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    token = token_file.read_text().strip()
    base = f"http://127.0.0.1:{http_port(digits_system, 'gpu-broker')}"
    device = httpx.get(f"{base}/devices", timeout=10).json()[0]["device_id"]
    assert httpx.post(f"{base}/devices/{device}/cordon", timeout=10).status_code == 401
    auth = {"Authorization": f"Bearer {token}"}
    try:
        r = httpx.post(f"{base}/devices/{device}/cordon", headers=auth, timeout=10)
        assert r.status_code == 200 and r.json()["cordoned"] is True
    finally:
        r = httpx.post(f"{base}/devices/{device}/uncordon", headers=auth, timeout=10)
        assert r.status_code == 200 and r.json()["cordoned"] is False
    inference = f"http://127.0.0.1:{http_port(digits_system, 'inference')}"
    assert httpx.delete(f"{inference}/cache", headers=auth, timeout=30).status_code == 200
