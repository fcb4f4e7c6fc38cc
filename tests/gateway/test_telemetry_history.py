"""Device telemetry kept over time: a job's devices for its whole run, every device's last hour.

Real gateway, real nats-server: the gpu-broker's TelemetrySampled messages are core-published
as the broker does, leases arrive as the broker's events, and the projection records them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from digits_gateway.readmodel import db as readmodel_db
from digits_gateway.readmodel import hardware_history
from digits_proto import codec, subjects
from digits_proto.gpus import DeviceSample, LeaseReleased, TelemetrySampled
from tests.gateway.accounts import with_csrf
from tests.gateway.helpers import until
from tests.gateway.test_cluster import GIB, announce, grant
from tests.gateway.test_sse import model_job


def message(util: float, used_gib: int, host_cpu: float | None = 40.0) -> bytes:
    """One node-n1 message: gpu0 idle, gpu1 at `util` % using `used_gib`; the host's CPU/RAM."""
    return codec.encode(
        TelemetrySampled(
            node_id="n1",
            samples=[
                DeviceSample(device_id="gpu0", memory_used=GIB, memory_total=16 * GIB),
                DeviceSample(
                    device_id="gpu1",
                    memory_used=used_gib * GIB,
                    memory_total=16 * GIB,
                    utilization=util,
                ),
            ],
            host_cpu=host_cpu,
            host_memory_used=3 * GIB,
            host_memory_total=32 * GIB,
        )
    )


@pytest.fixture
def short_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows every 0.3 s instead of every 10 s (the recorder reads these at each sample)."""
    monkeypatch.setattr(hardware_history, "STRIDE", 0.3)


@contextlib.asynccontextmanager
async def pumping(nc, payload: list[bytes]) -> AsyncIterator[None]:
    """Publish `payload[0]` about every 50 ms (as a broker does each second) until the block
    ends; the list may be swapped meanwhile."""

    async def forever() -> None:
        while True:
            await nc.publish(subjects.telemetry("n1"), payload[0])
            await asyncio.sleep(0.05)

    task = asyncio.create_task(forever())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def history(client, job_id: str, **params: object) -> dict:
    response = await client.get(f"/api/v1/jobs/{job_id}/hardware/history", params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_jobs_device_is_recorded_while_held_and_kept_after_the_lease_ends(
    client, backend, js, nc, short_windows
) -> None:
    """Only the held device, averaged utilization, peak memory, host CPU/RAM; nothing more is
    added once the lease ends, and what was recorded stays; the cluster's hour has both GPUs."""
    http = with_csrf(client)
    job_id = await model_job(http, backend)
    assert (await history(http, job_id))["devices"] == []  # nothing recorded: an empty list
    await announce(js)
    await grant(js, job_id, "gpu1")

    async def leased() -> bool:
        return bool((await http.get(f"/api/v1/jobs/{job_id}/hardware")).json()["devices"])

    await until(leased)
    payload = [message(90.0, 8)]
    async with pumping(nc, payload):

        async def three_rows() -> dict | None:
            h = await history(http, job_id)
            return h if h["devices"] and len(h["devices"][0]["t"]) >= 3 else None

        h = await until(three_rows)
        payload[0] = message(50.0, 12, host_cpu=None)

        async def swapped() -> bool:
            h = await history(http, job_id)
            return 12 * GIB in h["devices"][0]["memory_used"]

        await until(swapped)
        released = LeaseReleased(
            node_id="n1", lease_id=f"l-{job_id}", job_id=job_id, device_ids=["gpu1"]
        )
        await js.publish(subjects.gpu_events("n1"), codec.encode(released))

        async def free() -> bool:
            return not (await http.get(f"/api/v1/jobs/{job_id}/hardware")).json()["devices"]

        await until(free)
        await asyncio.sleep(0.1)  # the window open at the release is closed by the next sample
        ended = await history(http, job_id)

        async def cluster_rows_after_release() -> dict | None:
            c = (await http.get("/api/v1/cluster/history")).json()
            gpu1 = [d for d in c["devices"] if d["device_id"] == "gpu1"]
            return c if gpu1 and gpu1[0]["t"][-1] > ended["devices"][0]["t"][-1] + 0.3 else None

        cluster = await until(cluster_rows_after_release)
    (device,) = h["devices"]  # gpu0 was never the job's
    assert (device["node_id"], device["device_id"], device["name"]) == ("n1", "gpu1", "Fake 1")
    assert device["kind"] == "gpu" and device["memory_total"] == 16 * GIB
    assert set(device["utilization"]) == {90.0} and set(device["memory_used"]) == {8 * GIB}
    assert set(device["host_cpu"]) == {40.0} and device["host_memory_total"] == 32 * GIB
    assert device["t"] == sorted(device["t"]) and h["stride_seconds"] == 0.3
    (after,) = ended["devices"]
    assert 12 * GIB in after["memory_used"]  # the peak of a window
    assert any(u is not None and u < 90.0 for u in after["utilization"])
    assert (await history(http, job_id))["devices"] == ended["devices"]  # kept, not growing
    newest = ended["devices"][0]["t"][-1]
    later = await history(http, job_id, since=after["t"][-2])
    assert later["devices"][0]["t"] == [newest]
    assert {d["device_id"] for d in cluster["devices"]} == {"gpu0", "gpu1"}
    gpu0 = next(d for d in cluster["devices"] if d["device_id"] == "gpu0")
    assert set(gpu0["memory_used"]) == {GIB} and cluster["minutes"] == 60


async def test_a_long_run_is_thinned_and_a_deleted_job_takes_its_rows(
    client, backend, js, nc, short_windows, monkeypatch
) -> None:
    """Past MAX_POINTS rows a job's device keeps half, still spanning the run from its start;
    deleting the job answers 404 and drops its rows."""
    monkeypatch.setattr(hardware_history, "MAX_POINTS", 4)
    monkeypatch.setattr(hardware_history, "STRIDE", 0.1)
    http = with_csrf(client)
    job_id = await model_job(http, backend)
    await announce(js)
    await grant(js, job_id, "gpu1")

    async def leased() -> bool:
        return bool((await http.get(f"/api/v1/jobs/{job_id}/hardware")).json()["devices"])

    await until(leased)
    async with pumping(nc, [message(70.0, 4)]):

        async def first() -> float | None:
            h = await history(http, job_id)
            return h["devices"][0]["t"][0] if h["devices"] else None

        start = await until(first)
        seen = []

        async def thinned_twice() -> bool:
            h = await history(http, job_id)
            seen.append(len(h["devices"][0]["t"]))
            return recorder_stride(client, job_id) >= 0.4

        await until(thinned_twice, timeout=10)
        h = await history(http, job_id)
    assert max(seen) <= 4 and len(h["devices"][0]["t"]) <= 4
    assert h["devices"][0]["t"][0] - start < 0.5  # the start of the run is still there
    deleted = await http.delete(f"/api/v1/models/{job_id}")
    assert deleted.status_code < 300, deleted.text

    async def gone() -> bool:
        r = await http.get(f"/api/v1/jobs/{job_id}/hardware/history")
        return r.status_code == 404

    await until(gone)
    rows = (
        client_db(client)
        .con.execute("select count(*) from telemetry_history where job_id = ?", [job_id])
        .fetchall()
    )
    assert rows == [(0,)]


def client_db(client) -> readmodel_db.ReadModel:
    """The running app's read model (the test client drives the app in this process)."""
    app = client._transport.app  # httpx's ASGITransport
    return app.state.gateway.db


def recorder_stride(client, job_id: str) -> float:
    relay = client._transport.app.state.gateway.telemetry
    return relay.history.strides.get((job_id, "n1", "gpu1"), hardware_history.STRIDE)


async def test_bad_input_names_the_parameter_and_an_unknown_job_is_404(client) -> None:
    """since < 0 or not a number, minutes outside 1..60 → 400 naming it; unknown job → 404."""
    for url, field in [
        ("/api/v1/jobs/x/hardware/history?since=-1", "since"),
        ("/api/v1/jobs/x/hardware/history?since=soon", "since"),
        ("/api/v1/cluster/history?minutes=0", "minutes"),
        ("/api/v1/cluster/history?minutes=61", "minutes"),
        ("/api/v1/cluster/history?minutes=an-hour", "minutes"),
    ]:
        response = await client.get(url)
        assert response.status_code == 400, (url, response.text)
        assert field in response.json()["errors"], (url, response.text)
    response = await client.get("/api/v1/jobs/no-such-job/hardware/history")
    assert response.status_code == 404
    assert (await client.get("/api/v1/cluster/history")).json()["devices"] == []


def test_a_schema_change_keeps_the_recorded_history(tmp_path: Path, monkeypatch) -> None:
    """The read model is rebuilt from the streams on a schema change, but telemetry never was
    on a stream: its rows are carried over into the new file."""
    path = tmp_path / "read.duckdb"
    first = readmodel_db.ReadModel(path)
    first.con.execute(
        "insert into telemetry_history values ('j1', 'n1', 'gpu0', 1.0, 50, 1, 2, 10, 3, 4)"
    )
    first.con.execute("insert into jobs(id, name) values ('j1', 'm')")
    first.close()
    monkeypatch.setattr(readmodel_db, "SCHEMA_VERSION", "next")
    second = readmodel_db.ReadModel(path)
    assert second.con.execute("select count(*) from jobs").fetchall() == [(0,)]  # rebuilt
    assert second.con.execute("select job_id, utilization from telemetry_history").fetchall() == [
        ("j1", 50.0)
    ]
    assert not list(tmp_path.glob("*.parquet"))
    second.close()
