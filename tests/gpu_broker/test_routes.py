"""The broker's HTTP routes on a real nats-server: devices, leases, queue, cordon/uncordon."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
import pytest

from digits_proto import subjects
from digits_proto.gpus import LeaseAccepted
from digits_proto.replies import Rejected
from digits_proto.runtime import ServiceHost
from tests.fakes.fake_nvml import FakeNvml
from tests.gpu_broker.bus import acquire, release, renew, until

TOKEN = "test-operator-token"
OPS = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(autouse=True)
def ops_token(monkeypatch) -> None:
    monkeypatch.setenv("DIGITS_OPS_TOKEN", TOKEN)


def http(host: ServiceHost) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{host.bound_port}", timeout=10)


async def test_devices_leases_and_queue_as_json(start_broker, nc) -> None:
    """A lease shows on its device and in /leases with its expiry; a waiting job in /queue."""
    host = await start_broker(FakeNvml(count=1), port=0, telemetry_interval=0.1)
    lease = await acquire(nc, "job-a", holder="trainer-1", user="ann")
    assert isinstance(lease, LeaseAccepted)
    assert isinstance(await acquire(nc, "job-b", user="bob"), Rejected)
    async with http(host) as client:

        async def sampled():
            devices = (await client.get("/devices")).json()
            return devices if devices[0]["telemetry"] is not None else None

        devices = await until(sampled)
        assert devices[0]["device_id"] == "gpu0" and devices[0]["job_id"] == "job-a"
        assert devices[0]["lease_id"] == lease.lease_id and devices[0]["cordoned"] is False
        assert devices[0]["telemetry"]["utilization"] == 37.0
        (held,) = (await client.get("/leases")).json()
        assert (held["job_id"], held["holder"], held["user"]) == ("job-a", "trainer-1", "ann")
        renewed, expires = (datetime.fromisoformat(held[k]) for k in ("renewed_at", "expires_at"))
        assert expires - renewed == timedelta(seconds=lease.ttl_seconds)
        queue = (await client.get("/queue")).json()
        assert [(e["job_id"], e["position"], e["user"]) for e in queue] == [("job-b", 1, "bob")]
        assert queue[0]["reason"] == "waiting for 1 device"


async def test_cordon_needs_the_token_and_unknown_devices_are_404(start_broker) -> None:
    host = await start_broker(FakeNvml(count=1), port=0)
    async with http(host) as client:
        assert (await client.post("/devices/gpu0/cordon")).status_code == 401
        r = await client.post("/devices/gpu0/cordon", headers={"Authorization": "Bearer no"})
        assert r.status_code == 403
        r = await client.post("/devices/gpu9/cordon", headers=OPS)
        assert r.status_code == 404 and r.json()["field"] == "device_id"
        assert (await client.get("/devices")).json()[0]["cordoned"] is False


async def test_a_cordoned_device_is_never_granted_and_its_lease_runs_on(start_broker, nc) -> None:
    """Cordon gpu1 with a lease on gpu0 and gpu1: the lease renews; once released, a job
    gets gpu0 only and a second job waits, until gpu1 is uncordoned."""
    host = await start_broker(FakeNvml(count=2), port=0)
    held = await acquire(nc, "held", count=2)
    assert isinstance(held, LeaseAccepted)
    async with http(host) as client:
        r = await client.post("/devices/gpu1/cordon", headers=OPS)
        assert r.status_code == 200 and r.json()["cordoned"] is True
        metrics = (await client.get("/metrics")).text
        assert "digits_gpu_broker_devices_cordoned 1.0" in metrics
        assert "digits_gpu_broker_leases_open 1.0" in metrics
        assert isinstance(await renew(nc, held.lease_id), LeaseAccepted)
        await release(nc, held.lease_id)
        first = await acquire(nc, "first")
        assert isinstance(first, LeaseAccepted) and [d.device_id for d in first.devices] == ["gpu0"]
        assert isinstance(await acquire(nc, "second"), Rejected)
        r = await client.post("/devices/gpu1/uncordon", headers=OPS)
        assert r.status_code == 200 and r.json()["cordoned"] is False
        second = await acquire(nc, "second")
        assert isinstance(second, LeaseAccepted) and [d.device_id for d in second.devices] == [
            "gpu1"
        ]


async def test_a_cordon_survives_a_broker_restart_and_is_shared(start_broker, nc, js) -> None:
    """The cordon is a key of the shared queue bucket: a restarted broker still refuses the
    device, and any broker reading the bucket finds it."""
    host = await start_broker(FakeNvml(count=1), port=0)
    async with http(host) as client:
        assert (await client.post("/devices/gpu0/cordon", headers=OPS)).status_code == 200
    host.stop.set()

    async def stopped():
        return host.bound_port is None

    await until(stopped, timeout=15)
    again = await start_broker(FakeNvml(count=1), port=0)
    async with http(again) as client:
        assert (await client.get("/devices")).json()[0]["cordoned"] is True
    refused = await acquire(nc, "job", node="n1")
    assert isinstance(refused, Rejected) and refused.code == 409
    kv = await js.key_value(subjects.KV_QUEUE)
    assert (await kv.get("cordon.n1.gpu0")).value == b"{}"
    async with http(again) as client:
        assert (await client.post("/devices/gpu0/uncordon", headers=OPS)).status_code == 200
    assert isinstance(await acquire(nc, "job", node="n1"), LeaseAccepted)
