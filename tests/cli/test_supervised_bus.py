"""The launcher supervises its bus: a nats-server killed with -9 (the single one, or one node of
`--cluster 3`) comes back on the same port and store while the services stay up and reconnect by
themselves; a service that exits 78 (needs an operator) stops the system with its reason."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest
from nats.js.api import RetentionPolicy

from digits_cli import nats as embedded
from digits_cli.launcher import Launcher
from digits_cli.settings import Settings
from digits_proto import subjects
from digits_proto.runtime import EXIT_NEEDS_OPERATOR

FAKE = {"datasets": "tests.cli.fake_bus_service"}


@contextlib.contextmanager
def running(data_dir: Path, **settings: object) -> Iterator[tuple[Launcher, list[str]]]:
    """The real launcher (NATS + the fake service on the bus) until its ready line; stopped
    after, and every nats-server with it."""
    lines: list[str] = []
    config = Settings(data_dir=str(data_dir), port=0, ready_timeout=60, **settings)  # type: ignore[arg-type]
    echo = lambda *a, **_: lines.append(" ".join(map(str, a)))  # noqa: E731
    launcher = Launcher(config, echo=echo, modules=FAKE)
    runner = threading.Thread(target=launcher.run, daemon=True)
    runner.start()
    try:
        until(lambda: any("DIGITS is ready" in line for line in lines), 90, lines)
        yield launcher, lines
    finally:
        launcher.stopping = True
        runner.join(timeout=60)
        assert not runner.is_alive(), lines


def until(predicate, timeout: float, context: object = "") -> float:
    """Poll `predicate` until true; the seconds it took (an AssertionError past `timeout`)."""
    start = time.monotonic()
    while not predicate():
        assert time.monotonic() - start < timeout, f"not within {timeout} s: {context}"
        time.sleep(0.05)
    return time.monotonic() - start


def ready(launcher: Launcher) -> bool:
    """The fake service's /ready: 200 only while JetStream answers it."""
    try:
        with urllib.request.urlopen(launcher.children[0].health_url, timeout=2) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


def accepting(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


async def admin(launcher: Launcher) -> nats.NATS:
    creds = embedded.credentials(launcher.data_dir / "nats" / "creds")[embedded.ADMIN]
    return await nats.connect(
        launcher.nats_url.split(","), user=creds.user, password=creds.password
    )


async def append(launcher: Launcher, marker: str) -> int:
    """An event on the datasets stream, acknowledged (stored by a majority); its sequence."""
    client = await admin(launcher)
    try:
        ack = await client.jetstream().publish(subjects.dataset_events(marker), marker.encode())
        return ack.seq
    finally:
        await client.close()


async def stored(launcher: Launcher, seq: int) -> bytes:
    """The event at `seq`, read back once JetStream answers again (a leader may be elected)."""
    client = await admin(launcher)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                return (await client.jetstream().get_msg(subjects.STREAM_DATASETS, seq)).data
            except (nats.errors.Error, TimeoutError):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
    finally:
        await client.close()


async def kill_and_recover(launcher: Launcher, lines: list[str], index: int) -> float:
    """`kill -9` node `index`; it must come back on the same port with the same store, the
    service (never restarted) ready again, the event appended before still there. The seconds
    from the kill until the service is ready again."""
    seq = await append(launcher, f"before-{index}")
    node = launcher.bus.nodes[index]  # type: ignore[union-attr]
    service = launcher.children[0].proc
    killed = node.proc.pid  # type: ignore[union-attr]
    os.kill(killed, signal.SIGKILL)
    start = time.monotonic()
    until(lambda: node.proc is not None and node.proc.pid != killed, 30, lines)
    until(lambda: accepting(node.port), 30, lines)
    until(lambda: ready(launcher), 60, lines)
    recovered = time.monotonic() - start
    assert any(f"{node.name} exited with -9; restarting it on port {node.port}" in x for x in lines)
    assert launcher.children[0].proc is service and service.poll() is None  # it reconnected
    assert await stored(launcher, seq) == f"before-{index}".encode()
    return recovered


@pytest.mark.timeout(120)
async def test_a_killed_embedded_nats_server_comes_back_and_nothing_is_lost(tmp_path: Path) -> None:
    """kill -9 of the single nats-server: same port, same store, the service ready again."""
    with running(tmp_path / "data") as (launcher, lines):
        seconds = await kill_and_recover(launcher, lines, 0)
        print(f"single nats-server killed: service ready again after {seconds:.1f} s")
        seconds = await kill_and_recover(launcher, lines, 0)  # and again: still supervised
        assert launcher.bus.nodes[0].restarts == 2  # type: ignore[union-attr]


@pytest.mark.timeout(240)
async def test_a_killed_cluster_node_the_stream_leader_comes_back(tmp_path: Path) -> None:
    """kill -9 of the node leading the datasets stream of `--cluster 3`: it is restarted on its
    port and store, the stream stays R3 and keeps what was appended."""
    with running(tmp_path / "data", cluster=3) as (launcher, lines):
        client = await admin(launcher)
        try:
            info = await client.jetstream().stream_info(subjects.STREAM_DATASETS)
        finally:
            await client.close()
        assert info.config.num_replicas == 3
        leader = int(info.cluster.leader.rsplit("-", 1)[1]) - 1  # server names digits-1..3
        seconds = await kill_and_recover(launcher, lines, leader)
        print(f"cluster stream leader killed: service ready again after {seconds:.1f} s")


@pytest.mark.timeout(120)
def test_a_service_that_needs_an_operator_stops_the_system_with_its_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Exit 78: no restart, the service's last line printed, everything stopped, exit 78."""
    reason = "bus_needs_operator stream=DIGITS_WORK differs=retention do=`digits backup` first"
    monkeypatch.setenv("FAKE_EXIT", f"{EXIT_NEEDS_OPERATOR}:{reason}")
    lines: list[str] = []
    launcher = Launcher(
        Settings(data_dir=str(tmp_path / "data"), port=0, ready_timeout=60),
        echo=lambda *a, **_: lines.append(" ".join(map(str, a))),
        modules=FAKE,
    )
    assert launcher.run() == EXIT_NEEDS_OPERATOR
    message = next(line for line in lines if "needs an operator" in line)
    assert message.startswith("datasets needs an operator") and reason in message, lines
    assert not any("restarting" in line for line in lines), lines
    assert launcher.children[0].restarts == 0
    assert launcher.bus is not None and all(n.proc is None for n in launcher.bus.nodes)
    assert lines[-1] == "DIGITS stopped."


@pytest.mark.timeout(120)
def test_a_running_service_that_exits_78_stops_the_system_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the ready line: the same (no restart, the reason, everything stopped, exit 78)."""
    trigger = tmp_path / "now"
    monkeypatch.setenv("FAKE_EXIT", f"{EXIT_NEEDS_OPERATOR}:bus_needs_operator later")
    monkeypatch.setenv("FAKE_EXIT_ON", str(trigger))
    lines: list[str] = []
    launcher = Launcher(
        Settings(data_dir=str(tmp_path / "data"), port=0, ready_timeout=60),
        echo=lambda *a, **_: lines.append(" ".join(map(str, a))),
        modules=FAKE,
    )
    result: list[int] = []
    runner = threading.Thread(target=lambda: result.append(launcher.run()), daemon=True)
    runner.start()
    until(lambda: any("DIGITS is ready" in line for line in lines), 60, lines)
    trigger.touch()
    runner.join(timeout=60)
    assert result == [EXIT_NEEDS_OPERATOR], lines
    assert any("datasets needs an operator" in x and "later" in x for x in lines), lines
    assert not any("restarting" in line for line in lines), lines
    assert all(n.proc is None for n in launcher.bus.nodes)  # type: ignore[union-attr]


@pytest.mark.timeout(120)
async def test_a_stream_only_an_operator_may_change_stops_the_start_with_the_reason(
    tmp_path: Path,
) -> None:
    """The work queue recreated with another retention (as an operator's mistake would): the
    next start provisions nothing, says what differs, starts no service and exits 78."""
    data = tmp_path / "data"
    with running(data) as (launcher, _):
        client = await admin(launcher)
        try:
            js = client.jetstream()
            config = (await js.stream_info(subjects.STREAM_WORK)).config
            await js.delete_stream(subjects.STREAM_WORK)
            await js.add_stream(config, retention=RetentionPolicy.LIMITS)
        finally:
            await client.close()
    lines: list[str] = []
    again = Launcher(
        Settings(data_dir=str(data), port=0, ready_timeout=60),
        echo=lambda *a, **_: lines.append(" ".join(map(str, a))),
        modules=FAKE,
    )
    assert await asyncio.to_thread(again.run) == EXIT_NEEDS_OPERATOR
    message = next(line for line in lines if "NATS needs an operator" in line)
    assert subjects.STREAM_WORK in message, lines
    assert again.children[0].proc is None  # no service was started
    assert all(n.proc is None for n in again.bus.nodes)  # type: ignore[union-attr]


LAUNCHER = """
import sys
from digits_cli.launcher import Launcher
from digits_cli.settings import Settings
settings = Settings(data_dir=sys.argv[1], port=0, ready_timeout=60, cluster=int(sys.argv[2]))
Launcher(settings, modules={"datasets": "tests.cli.fake_bus_service"}).run()
"""


@pytest.mark.timeout(120)
def test_nothing_outlives_a_launcher_killed_with_9(tmp_path: Path) -> None:
    """kill -9 of the launcher of a cluster: its three nats-servers and its service end too
    (none keeps a store or a port for the next start)."""
    data = tmp_path / "data"
    log = tmp_path / "launcher.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", LAUNCHER, str(data), "3"],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=Path(__file__).resolve().parents[2],
        )
    try:
        until(lambda: "DIGITS is ready" in log.read_text(), 90, log)
        pids = [int((data / "nats" / f"node{i}" / "nats.pid").read_text()) for i in (1, 2, 3)]
        services = json.loads((data / "services.json").read_text())
        assert len(pids) == 3 and "datasets" in services
        proc.kill()
        proc.wait()
        until(lambda: not any(_alive(pid) for pid in pids), 30, "nats-servers still running")
        port = int(services["datasets"].rsplit(":", 1)[1])
        until(lambda: not accepting(port), 30, "the service still answers")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for init to reap it counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False
