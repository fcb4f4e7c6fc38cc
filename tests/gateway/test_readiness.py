"""Until every backend service answers discovery, only /health (and /metrics) work."""

from __future__ import annotations

from typing import Any

from digits_gateway.app import create_app
from digits_proto import subjects
from tests.gateway.accounts import seed_token
from tests.gateway.conftest import running, wait_ready
from tests.gateway.fake_backend import FakeBackend
from tests.gateway.helpers import until


async def _not_401(response: Any) -> Any:
    """The response once the token's event is projected (before, the token is unknown: 401)."""
    r = await response
    return r if r.status_code != 401 else None


async def test_routes_answer_503_until_every_service_answers_its_ping(
    nc, js, settings, accounts
) -> None:
    """With the trainer missing, routes 503 naming it and /health 503; once it is up, 200.
    (Sign-in waits for readiness too: alice's API token is issued as its event.)"""
    auth = await seed_token(js, "alice")
    backend = FakeBackend(nc, js)
    await backend.start(
        tuple(s for s in subjects.BACKEND_SERVICES if s != subjects.SERVICE_TRAINER)
    )
    async with running(create_app(settings)) as client:
        health = await client.get("/health")
        assert health.status_code == 503
        assert subjects.SERVICE_TRAINER in health.json()["waiting_for"]
        r = await until(lambda: _not_401(client.get("/index.json", headers=auth)))
        assert r.status_code == 503
        assert r.json()["error"]["message"].startswith("DIGITS is starting: waiting for")
        assert subjects.SERVICE_TRAINER in r.json()["error"]["message"]
        assert (await client.get("/metrics")).status_code == 200
        await backend.start((subjects.SERVICE_TRAINER,))
        await wait_ready(client)
        assert (await client.get("/index.json", headers=auth)).status_code == 200
    await backend.stop()


async def test_metrics_are_prometheus_text(client) -> None:
    """/metrics renders counters and gauges in the exposition format."""
    await client.post(
        "/datasets/images/classification.json", data={"dataset_name": "a", "folder_train": "/d"}
    )
    r = await client.get("/metrics")
    assert r.headers["content-type"].startswith("text/plain")
    assert "digits_gateway_events_applied" in r.text
    assert (
        'digits_gateway_commands_total{outcome="ok",subject="digits.cmd.datasets.create"}' in r.text
    )
