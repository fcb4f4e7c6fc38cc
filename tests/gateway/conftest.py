"""Gateway fixtures: fake backend services on a real nats-server, the app in this event loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from litestar import Litestar

from digits_gateway.app import create_app, server
from digits_gateway.settings import Settings
from tests.conftest import free_port
from tests.gateway.accounts import PASSWORDS, seed_accounts, sign_in, with_csrf
from tests.gateway.fake_backend import FakeBackend


def make_settings(nats_url: str, tmp_path: Path, **changes: object) -> Settings:
    """Settings for one test: its own data dir, fast readiness checks."""
    values: dict[str, object] = {
        "nats_url": nats_url,
        "data_dir": str(tmp_path / "data"),
        "ready_interval": 0.1,
        "host": "127.0.0.1",
        "port": 0,
        "keepalive_seconds": 15.0,
        "admin_password": PASSWORDS["admin"],
        "allowed_hosts": "gateway,127.0.0.1",  # in-process base_url, live server
    }
    values.update(changes)
    return Settings(**values)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def running(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """The app's lifespan plus an in-process client, all in the test's event loop.

    (litestar's AsyncTestClient runs the app in a portal thread and blocks this loop during
    each request, which would deadlock the fake services that live in this loop.) The lifespan
    runs in one task of its own: anyio cancel scopes must be left in the task that entered them.
    """
    started, stop = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with app.lifespan():
            started.set()
            await stop.wait()

    task = asyncio.create_task(hold())
    waiter = asyncio.create_task(started.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        waiter.cancel()
        task.result()  # startup failed: raise its error here
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield with_csrf(client)
    finally:
        stop.set()
        await task


async def wait_ready(client: httpx.AsyncClient, timeout: float = 10.0) -> None:
    """Poll /health like the launcher does."""
    async with asyncio.timeout(timeout):
        while (await client.get("/health")).status_code != 200:
            await asyncio.sleep(0.05)


@pytest.fixture
async def accounts(js) -> None:
    """admin, alice, bob (users) and vera (viewer), opened before the gateway starts."""
    await seed_accounts(js)


@pytest.fixture
async def backend(nc, js, accounts) -> AsyncIterator[FakeBackend]:
    """All four backend services, faked (the test accounts exist)."""
    fake = FakeBackend(nc, js)
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
def settings(nats_url: str, tmp_path: Path) -> Settings:
    """This test's gateway settings."""
    return make_settings(nats_url, tmp_path)


@pytest.fixture
async def client(settings: Settings, backend: FakeBackend) -> AsyncIterator[httpx.AsyncClient]:
    """A ready gateway, signed in as `alice` with her password (a session cookie)."""
    async with running(create_app(settings)) as c:
        await wait_ready(c)
        await sign_in(c, "alice")
        yield c


@pytest.fixture
async def live_url(nats_url: str, tmp_path: Path, backend: FakeBackend) -> AsyncIterator[str]:
    """The gateway behind a real uvicorn on loopback (SSE must be tested unbuffered)."""
    port = free_port()
    srv = server(make_settings(nats_url, tmp_path, port=port))
    task = asyncio.create_task(srv.serve())
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=url) as probe:
        async with asyncio.timeout(10):
            while True:
                with contextlib.suppress(httpx.TransportError):
                    if (await probe.get("/health")).status_code == 200:
                        break
                await asyncio.sleep(0.05)
    yield url
    srv.should_exit = True
    await asyncio.wait_for(task, 10)
