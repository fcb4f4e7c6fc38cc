"""The gateway's `/ready` summarises the system now: each service's own `/ready` (a real
ServiceHost here, at the address services.json gives), the bus (a real nats-server stopped) and
its own disk floor; 200 only when all are ready, the body naming each component's reasons."""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest

from digits_gateway.app import create_app
from digits_gateway.settings import Settings
from digits_gateway.status import Component, notices
from digits_proto import permissions, subjects
from digits_proto.runtime import ServiceHost, ensure_streams
from digits_proto.runtime._disk import MIN_FREE_DISK_ENV
from tests.conftest import NatsCluster, free_port, start_nats
from tests.gateway.accounts import seed_accounts, sign_in
from tests.gateway.conftest import make_settings, running, wait_ready
from tests.gateway.fake_backend import FakeBackend
from tests.gateway.helpers import until

TIMEOUT_S = 15.0  # the summary is cached ~2 s, a service's stream check ~1 s


def component(body: dict[str, Any], name: str) -> dict[str, Any]:
    [found] = [c for c in body["components"] if c["name"] == name]
    return found


async def ready_is(client: httpx.AsyncClient, status: int) -> dict[str, Any] | None:
    r = await client.get("/ready")
    return r.json() if r.status_code == status else None


@pytest.fixture
async def trainer(nats_url: str, tmp_path: Path) -> AsyncIterator[ServiceHost]:
    """A real service host (HTTP `/ready` and all) standing in for the trainer."""
    host = ServiceHost(subjects.SERVICE_TRAINER, nats_url, 0, data_dir=tmp_path / "trainer")
    await host.start()
    host.mark_ready()
    yield host
    await host.close()


def write_addresses(settings: Settings, addresses: dict[str, str]) -> None:
    """What the launcher writes once the system is up."""
    data = Path(settings.data_dir)
    data.mkdir(parents=True, exist_ok=True)
    (data / "services.json").write_text(json.dumps(addresses))


async def test_a_service_not_ready_makes_the_gateway_503_naming_it_and_why(
    settings: Settings, backend: FakeBackend, trainer: ServiceHost
) -> None:
    paused: list[str] = []
    trainer.add_readiness_check(lambda: paused[0] if paused else None)
    write_addresses(settings, {"trainer": f"http://127.0.0.1:{trainer.bound_port}"})
    async with running(create_app(settings)) as client:
        await wait_ready(client)
        body = await until(lambda: ready_is(client, 200), TIMEOUT_S)
        assert body["ready"] is True and body["notices"] == []
        names = {c["name"] for c in body["components"]}
        assert names == {"bus", "gateway", "datasets", "trainer", "inference", "gpu-broker"}

        paused.append("draining: 1 job finishing")
        body = await until(lambda: ready_is(client, 503), TIMEOUT_S)
        assert component(body, "trainer") == {
            "name": "trainer",
            "ready": False,
            "reasons": ["draining: 1 job finishing"],
        }
        assert component(body, "datasets")["ready"] is True  # judged by its ping: no address
        assert body["notices"] == [
            {"text": "Service trainer is not ready", "detail": "draining: 1 job finishing"}
        ]
        # The UI's status says the same, always with 200 (a browser logs every 503 it fetches),
        # to those signed in (its reasons name paths on the server).
        assert (await client.get("/api/v1/status")).status_code == 401
        await sign_in(client, "alice")
        status = await client.get("/api/v1/status")
        assert status.status_code == 200 and status.json()["ready"] is False

        paused.clear()
        await until(lambda: ready_is(client, 200), TIMEOUT_S)

        # The trainer gone from its address: it does not answer, and that is the reason given.
        address = f"http://127.0.0.1:{trainer.bound_port}"
        await trainer.close()
        body = await until(lambda: ready_is(client, 503), TIMEOUT_S)
        [reason] = component(body, "trainer")["reasons"]
        assert reason.startswith(f"does not answer at {address}/ready"), reason


async def test_a_stopped_bus_makes_the_gateway_503_and_says_training_is_paused(
    tmp_path: Path,
) -> None:
    port = free_port()
    proc, url = start_nats(tmp_path / "nats", port)
    nc = await nats.connect(url)
    await ensure_streams(nc.jetstream())
    await seed_accounts(nc.jetstream())
    backend = FakeBackend(nc, nc.jetstream())
    await backend.start()
    try:
        async with running(create_app(make_settings(url, tmp_path))) as client:
            await wait_ready(client)
            await until(lambda: ready_is(client, 200), TIMEOUT_S)
            proc.kill()
            proc.wait()
            body = await until(lambda: ready_is(client, 503), TIMEOUT_S)
            [reason] = component(body, "bus")["reasons"]
            assert reason.startswith("JetStream: not reachable"), reason
            assert body["notices"][0]["text"] == "Training paused: the message bus is not reachable"
            # Back on the same port and store: the gateway reconnects and is ready again.
            proc, _ = start_nats(tmp_path / "nats", port)
            await until(lambda: ready_is(client, 200), TIMEOUT_S * 2)
    finally:
        await backend.stop()
        await nc.close()
        proc.kill()
        proc.wait()


async def test_a_cluster_without_quorum_makes_the_gateway_say_training_is_paused(
    nats_cluster: NatsCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGITS_NATS_REPLICAS", "3")  # what `digits run --cluster 3` sets
    nc = await nats.connect(nats_cluster.url.split(","), max_reconnect_attempts=-1)
    js = nc.jetstream()
    await ensure_streams(js)
    await seed_accounts(js)
    backend = FakeBackend(nc, js)
    await backend.start()
    try:
        settings = make_settings(nats_cluster.url, tmp_path)
        async with running(create_app(settings)) as client:
            await wait_ready(client)
            for name in permissions.ALL_STREAMS:  # three replicas each, as --cluster 3 has them
                config = (await js.stream_info(name)).config
                if config.num_replicas != 3:
                    config.num_replicas = 3
                    await js.update_stream(config)
            await until(lambda: ready_is(client, 200), TIMEOUT_S * 2)
            nats_cluster.kill(0)
            nats_cluster.kill(1)
            body = await until(lambda: ready_is(client, 503), TIMEOUT_S * 2)
            [reason] = component(body, "bus")["reasons"]
            assert reason.startswith("JetStream: no quorum for streams"), reason
            assert body["notices"][0] == {
                "text": "Training paused: the message bus has no quorum",
                "detail": reason,
            }
            nats_cluster.start(0)
            await until(lambda: ready_is(client, 200), TIMEOUT_S * 3)
    finally:
        await backend.stop()
        await nc.close()


async def test_the_gateway_disk_under_its_floor_is_a_reason(
    settings: Settings, backend: FakeBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(settings.data_dir).free
    monkeypatch.setenv(MIN_FREE_DISK_ENV, str(free + (10 << 30)))
    async with running(create_app(settings)) as client:
        await wait_ready(client)  # /health: the start gate latches; /ready tells the truth
        body = await until(lambda: ready_is(client, 503), TIMEOUT_S)
        [reason] = component(body, "gateway")["reasons"]
        assert MIN_FREE_DISK_ENV in reason and settings.data_dir in reason
        assert body["notices"][0]["text"] == "The web gateway is degraded"


async def test_a_bad_floor_setting_is_named_by_ready_not_a_traceback(
    settings: Settings, backend: FakeBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MIN_FREE_DISK_ENV, "plenty")
    async with running(create_app(settings)) as client:
        await wait_ready(client)
        body = await until(lambda: ready_is(client, 503), TIMEOUT_S)
        assert component(body, "gateway")["reasons"] == [
            f"{MIN_FREE_DISK_ENV}: 'plenty' is not a size (e.g. 1GiB, 500MB or 1073741824)"
        ]


async def test_the_summary_is_cached_for_a_couple_of_seconds(client: httpx.AsyncClient) -> None:
    first = (await client.get("/api/v1/status")).json()
    second = (await client.get("/api/v1/status")).json()
    assert first["checked_at"] == second["checked_at"]


def test_while_the_bus_has_no_quorum_the_services_jetstream_reasons_are_not_repeated() -> None:
    quorum = "JetStream: no quorum for streams DIGITS_MODELS (no answer in 1.5 s)"
    found = notices(
        [
            Component(name="bus", ready=False, reasons=[quorum]),
            Component(name="gateway", ready=True, reasons=[]),
            Component(name="trainer", ready=False, reasons=[quorum]),
            Component(name="datasets", ready=False, reasons=[quorum, "disk: 1 MiB free"]),
        ]
    )
    assert [(n.text, n.detail) for n in found] == [
        ("Training paused: the message bus has no quorum", quorum),
        ("Service datasets is not ready", "disk: 1 MiB free"),
    ]
