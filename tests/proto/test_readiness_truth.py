"""`/ready` tells the truth: a real nats-server stopped, a real 3-node cluster losing its quorum
and a real disk under the free-space floor each turn it 503 naming why; back to 200 when mended.
`/health` stays "alive" throughout."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import nats
import pytest

from digits_proto import permissions, subjects
from digits_proto.runtime import ServiceHost
from digits_proto.runtime._disk import MIN_FREE_DISK_ENV, min_free_disk, parse_size
from tests.conftest import NatsCluster, free_port, start_nats
from tests.mounts import fill, tmpfs

DEADLINE_S = 30.0


async def ready(host: ServiceHost) -> tuple[int, list[str]]:
    """`/ready`'s status and reasons; `/health` must say alive whatever `/ready` says."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{host.bound_port}") as http:
        health = await http.get("/health", timeout=5)
        assert health.status_code == 200 and health.json()["alive"] is True
        r = await http.get("/ready", timeout=5)
    return r.status_code, r.json()["waiting_for"]


async def until(host: ServiceHost, status: int, deadline_s: float = DEADLINE_S) -> list[str]:
    """Poll `/ready` until it answers `status`; its reasons then (fails at the deadline)."""
    deadline = time.monotonic() + deadline_s
    seen: tuple[int, list[str]] = (0, [])
    while time.monotonic() < deadline:
        seen = await ready(host)
        if seen[0] == status:
            return seen[1]
        await asyncio.sleep(0.2)
    raise AssertionError(f"/ready never answered {status} in {deadline_s} s; last {seen}")


@pytest.fixture
async def started(tmp_path: Path) -> AsyncIterator[list[ServiceHost]]:
    """Hosts a test starts, closed after it."""
    hosts: list[ServiceHost] = []
    yield hosts
    for host in hosts:
        await host.close()


async def start(hosts: list[ServiceHost], url: str, data_dir: Path) -> ServiceHost:
    host = ServiceHost(subjects.SERVICE_TRAINER, url, 0, data_dir=data_dir)
    hosts.append(host)
    await host.start()
    host.mark_ready()
    return host


async def test_a_stopped_nats_server_makes_ready_503_naming_jetstream(
    tmp_path: Path, started: list[ServiceHost]
) -> None:
    port = free_port()
    proc, url = start_nats(tmp_path / "nats", port)
    try:
        host = await start(started, url, tmp_path)
        assert await until(host, 200) == []
        proc.kill()
        proc.wait()
        reasons = await until(host, 503)
        assert any(r.startswith("JetStream: not reachable") for r in reasons), reasons
        # The same server back (same store, same port): the service reconnects, ready again.
        proc, _ = start_nats(tmp_path / "nats", port)
        assert await until(host, 200) == []
    finally:
        proc.kill()
        proc.wait()


async def test_a_cluster_without_quorum_makes_ready_503_naming_the_streams(
    nats_cluster: NatsCluster, tmp_path: Path, started: list[ServiceHost]
) -> None:
    host = await start(started, nats_cluster.url, tmp_path)
    # Every stream the system uses on three replicas, as `--cluster 3` provisions them.
    admin = await nats.connect(nats_cluster.url.split(","), max_reconnect_attempts=-1)
    try:
        js = admin.jetstream()
        for name in permissions.ALL_STREAMS:
            config = (await js.stream_info(name)).config
            config.num_replicas = 3
            await js.update_stream(config)
    finally:
        await admin.close()
    assert await until(host, 200) == []

    # One node of three gone, the leader of some streams among them: a quorum remains.
    nats_cluster.kill(0)
    assert await until(host, 200) == []

    nats_cluster.kill(1)
    lost = time.monotonic()
    reasons = await until(host, 503)
    print(f"/ready said 503 {time.monotonic() - lost:.1f} s after the quorum was lost")
    quorum = [r for r in reasons if r.startswith("JetStream: no quorum for streams")]
    assert quorum, reasons
    named = {s for r in quorum for s in permissions.ALL_STREAMS if s in r}
    assert subjects.STREAM_MODELS in named, reasons

    nats_cluster.start(0)
    back = time.monotonic()
    assert await until(host, 200) == []
    print(f"/ready said 200 {time.monotonic() - back:.1f} s after a node came back")


async def test_a_stream_deleted_makes_ready_503_naming_it(
    tmp_path: Path, nats_url: str, started: list[ServiceHost]
) -> None:
    host = await start(started, nats_url, tmp_path)
    assert await until(host, 200) == []
    admin = await nats.connect(nats_url)
    try:
        await admin.jetstream().delete_stream(subjects.STREAM_GPUS)
    finally:
        await admin.close()
    assert await until(host, 503) == [f"JetStream: streams missing: {subjects.STREAM_GPUS}"]


async def test_a_disk_under_the_floor_makes_ready_503_naming_the_floor(
    tmp_path: Path, nats_url: str, started: list[ServiceHost], monkeypatch: pytest.MonkeyPatch
) -> None:
    free = shutil.disk_usage(tmp_path).free
    monkeypatch.setenv(MIN_FREE_DISK_ENV, str(free + (10 << 30)))  # above what is really free
    host = await start(started, nats_url, tmp_path)
    [reason] = await until(host, 503)
    assert MIN_FREE_DISK_ENV in reason and str(tmp_path) in reason, reason
    host.min_free_disk = 1 << 20  # a floor the disk is above
    assert await until(host, 200) == []


async def test_a_real_full_disk_turns_ready_503_and_freeing_it_ends_that(
    tmp_path: Path, nats_url: str, started: list[ServiceHost], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MIN_FREE_DISK_ENV, "1MiB")
    with tmpfs(tmp_path / "data", size="8m") as data:
        host = await start(started, nats_url, data)
        assert await until(host, 200) == []
        filler = fill(data)
        [reason] = await until(host, 503)
        assert "under the floor of 1.0 MiB (DIGITS_MIN_FREE_DISK)" in reason, reason
        filler.unlink()
        assert await until(host, 200) == []


def test_sizes_read_like_an_operator_writes_them() -> None:
    assert parse_size("1GiB") == 1 << 30
    assert parse_size("1 GiB") == 1 << 30
    assert parse_size("500MB") == 500_000_000
    assert parse_size("2g") == 2 << 30
    assert parse_size("1.5KiB") == 1536
    assert parse_size("1073741824") == 1 << 30
    assert parse_size("0") == 0
    for bad in ("", "lots", "1 GiBs", "-1GiB", "1e9"):
        with pytest.raises(ValueError, match="is not a size"):
            parse_size(bad)


def test_the_floor_defaults_to_1gib_and_a_bad_one_stops_with_one_line() -> None:
    assert min_free_disk({}) == 1 << 30
    assert min_free_disk({MIN_FREE_DISK_ENV: "200MiB"}) == 200 << 20
    with pytest.raises(SystemExit, match=f"^{MIN_FREE_DISK_ENV}: 'plenty' is not a size"):
        min_free_disk({MIN_FREE_DISK_ENV: "plenty"})
