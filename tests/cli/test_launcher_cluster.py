"""`digits run --cluster 3`: three clustered nats-servers on loopback, every stream and bucket
R3, the services given every node; the next start rejoins the same cluster with its data."""

from __future__ import annotations

import asyncio
import json
import stat
import threading
import time
from pathlib import Path

import nats
import pytest

from digits_cli.__main__ import main
from digits_cli.backup import backup
from digits_cli.bus import CLUSTER_FILE, Bus
from digits_cli.launcher import Launcher
from digits_cli.logfiles import RotatingLog
from digits_cli.nats import ADMIN, provision
from digits_cli.settings import Settings, get_settings
from digits_proto.runtime import CREDS_ENV, credentials_for
from tests.cli.test_supervised_bus import FAKE, admin, append, ready, running, stored, until


@pytest.mark.timeout(240)
async def test_cluster_of_three_replicates_everything_and_rejoins_after_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    start = time.monotonic()
    with running(data, cluster=3) as (launcher, lines):
        started = time.monotonic() - start
        print(f"--cluster 3 ready (fake service) in {started:.1f} s")
        urls = launcher.nats_url.split(",")
        assert len(urls) == 3 and len(set(urls)) == 3
        env = launcher._env(launcher.children[0])
        assert env["DIGITS_NATS_URL"] == launcher.nats_url
        assert env["DIGITS_NATS_REPLICAS"] == "3"
        addresses = json.loads((data / "services.json").read_text())
        assert [addresses[f"nats-{i}"] for i in (1, 2, 3)] == urls
        assert any("NATS cluster of 3" in line and urls[2] in line for line in lines), lines
        assert any("NATS: nats-1, nats-2, nats-3 (R3)" in x for x in lines if "ready" in x)
        client = await admin(launcher)
        try:
            streams = [info async for info in _streams(client)]
        finally:
            await client.close()
        names = {info.config.name for info in streams}
        # Events, the work queue, the KV and the Object Store buckets: all of them R3.
        assert {"DIGITS_DATASETS", "DIGITS_WORK", "KV_digits-leases", "OBJ_digits-models"} <= names
        assert {info.config.name: info.config.num_replicas for info in streams} == dict.fromkeys(
            names, 3
        )
        kept = data / "nats" / CLUSTER_FILE
        assert stat.S_IMODE(kept.stat().st_mode) == 0o600
        secret = json.loads(kept.read_text())["password"]
        for i in (1, 2, 3):
            conf = data / "nats" / f"node{i}" / "nats.conf"
            assert stat.S_IMODE(conf.stat().st_mode) == 0o600
            assert json.loads(conf.read_text())["jetstream"]["store_dir"].endswith(
                f"node{i}/jetstream"
            )
        seq = await append(launcher, "first-run")
        # An operator's backup of the running cluster: DIGITS_NATS_URL lists every node.
        monkeypatch.setenv(CREDS_ENV, str(data / "nats" / "creds" / f"{ADMIN}.json"))
        saved = tmp_path / "saved"
        settings = Settings(data_dir=str(data), nats_url=launcher.nats_url)
        assert await asyncio.to_thread(backup, settings, saved) == 0
        manifest = json.loads((saved / "manifest.json").read_text())
        assert {s["name"] for s in manifest["streams"]} >= {"DIGITS_DATASETS", "DIGITS_WORK"}
    assert all(n.proc is None for n in launcher.bus.nodes)  # type: ignore[union-attr]
    with running(data, cluster=3) as (again, _):
        assert json.loads(kept.read_text())["password"] == secret  # the same cluster
        assert await stored(again, seq) == b"first-run"


async def _streams(client: nats.NATS):
    for info in await client.jetstream().streams_info():
        yield info


def test_a_cluster_needs_three_nodes_and_replicas_fit_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`digits run --cluster 2` is refused before anything starts; so are more replicas than
    servers (JetStream would refuse every stream)."""
    monkeypatch.setenv("DIGITS_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    try:
        with pytest.raises(SystemExit, match="at least 3 nodes"):
            main(["run", "--cluster", "2"])
    finally:
        get_settings.cache_clear()
    assert not (tmp_path / "data").exists()  # refused before anything was made
    with pytest.raises(SystemExit, match="DIGITS_NATS_REPLICAS=3"):
        _ = Settings(nats_replicas=3).replicas
    assert Settings(cluster=3).replicas == 3 and Settings().replicas == 1
    assert Settings(cluster=5).replicas == 3 and Settings(cluster=5, nats_replicas=5).replicas == 5


@pytest.mark.timeout(120)
async def test_a_node_of_a_larger_system_runs_only_its_services_on_the_cluster(
    tmp_path: Path, nats_cluster, nats_creds: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`digits run --only …` (compose's `node`): its services on every node's URL with their
    own credentials from the folder, no services.json, and they ride out a NATS node's loss."""
    plain = ",".join(f"nats://127.0.0.1:{port}" for port in nats_cluster.client_ports)
    admin_creds = credentials_for(ADMIN, str(nats_creds))
    assert admin_creds is not None
    await asyncio.to_thread(provision, plain, admin_creds, 3)  # compose's nats-provision
    monkeypatch.setenv(CREDS_ENV, str(nats_creds))
    lines: list[str] = []
    launcher = Launcher(
        Settings(data_dir=str(tmp_path / "data"), port=0, ready_timeout=60, nats_url=plain),
        echo=lambda *a, **_: lines.append(" ".join(map(str, a))),
        modules=FAKE,
        part=True,
    )
    runner = threading.Thread(target=launcher.run, daemon=True)
    runner.start()
    try:
        until(lambda: any("DIGITS node ready: datasets" in x for x in lines), 60, lines)
        assert not (tmp_path / "data" / "services.json").exists()
        env = launcher._env(launcher.children[0])
        assert env["DIGITS_NATS_URL"] == plain and env[CREDS_ENV] == str(nats_creds)
        service = launcher.children[0].proc
        nats_cluster.kill(0)
        until(lambda: ready(launcher), 30, lines)
        assert launcher.children[0].proc is service  # it reconnected to another node
    finally:
        launcher.stopping = True
        runner.join(timeout=30)


def test_only_names_services_of_the_system_and_needs_its_nats(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGITS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("DIGITS_NATS_URL", raising=False)
    get_settings.cache_clear()
    try:
        with pytest.raises(SystemExit, match="no service trainr"):
            main(["run", "--only", "trainr,gpu-broker"])
        with pytest.raises(SystemExit, match="DIGITS_NATS_URL"):
            main(["run", "--only", "trainer,gpu-broker"])
    finally:
        get_settings.cache_clear()


def test_a_data_dir_run_the_other_way_says_its_streams_are_elsewhere(tmp_path: Path) -> None:
    """A single server's store met by `--cluster 3` (and a cluster's by a single server): the
    start says the streams there are not the ones it runs on, instead of looking empty."""
    notes: list[str] = []
    (tmp_path / "nats" / "jetstream").mkdir(parents=True)
    Bus(tmp_path, 3, 0, lambda n: RotatingLog(tmp_path / n, 0, 0), echo=notes.append)
    assert any("single server run; this cluster does not use it" in n for n in notes), notes
    notes.clear()
    Bus(tmp_path, 1, 0, lambda n: RotatingLog(tmp_path / n, 0, 0), echo=notes.append)
    assert any("cluster run; this single server does not use it" in n for n in notes), notes
