"""First start: the `admin` account, from DIGITS_ADMIN_PASSWORD or with a one-time sign-in link."""

from __future__ import annotations

import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from digits_gateway.app import create_app
from digits_gateway.settings import Settings
from tests.gateway.accounts import another_client, sign_in
from tests.gateway.conftest import make_settings, running, wait_ready
from tests.gateway.fake_backend import FakeBackend


@pytest.fixture
async def services(nc, js) -> AsyncIterator[FakeBackend]:
    """The backend services, faked, on a bus with no account yet."""
    fake = FakeBackend(nc, js)
    await fake.start()
    yield fake
    await fake.stop()


async def test_a_configured_admin_password_signs_in_and_no_link_is_written(
    nats_url: str, tmp_path: Path, services
) -> None:
    """DIGITS_ADMIN_PASSWORD makes `admin` (role admin) with that password."""
    settings = make_settings(nats_url, tmp_path, admin_password="s3cret-admin")
    async with running(create_app(settings)) as client:
        await wait_ready(client)
        await sign_in(client, "admin", "s3cret-admin")
        assert (await client.get("/api/v1/session")).json() == {
            "username": "admin",
            "role": "admin",
        }
    assert not settings.signin_token_path.exists()


async def _link_works(settings: Settings, token: str) -> tuple[int, str]:
    async with running(create_app(settings)) as client:
        await wait_ready(client)
        r = await client.get("/login", params={"token": token, "next": "/"})
        who = await client.get("/api/v1/session")
        return r.status_code, who.json().get("username", "") if who.status_code == 200 else ""


async def test_without_a_password_a_private_one_time_link_signs_the_admin_in_once(
    nats_url: str, tmp_path: Path, services
) -> None:
    """No DIGITS_ADMIN_PASSWORD: a random password (hash only) and a 0600 token file; the link
    signs in as admin once, then never again, not even after a restart."""
    settings = make_settings(nats_url, tmp_path, admin_password="")
    async with running(create_app(settings)) as client:
        await wait_ready(client)
        path = settings.signin_token_path
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        token = path.read_text().strip()
        r = await client.get("/login", params={"token": "not-the-token"})
        assert r.status_code == 404 and "not valid" in r.text
        r = await client.get("/login", params={"token": token, "next": "/models"})
        assert (r.status_code, r.headers["location"]) == (302, "/models")
        assert (await client.get("/api/v1/session")).json() == {
            "username": "admin",
            "role": "admin",
        }
        async with another_client(client) as again:
            assert (await again.get("/login", params={"token": token})).status_code == 404
            assert (await again.get("/api/v1/session")).status_code == 401
    path.unlink()
    assert await _link_works(settings, token) == (404, "")
    assert not path.exists()  # used: no new link on later starts


async def test_an_unused_link_is_renewed_at_the_next_start(
    nats_url: str, tmp_path: Path, services
) -> None:
    """Restarted before the link was used: a fresh link works, the old one does not."""
    settings = make_settings(nats_url, tmp_path, admin_password="")
    async with running(create_app(settings)) as client:
        await wait_ready(client)
    old = settings.signin_token_path.read_text().strip()
    async with running(create_app(settings)) as client:
        await wait_ready(client)
        new = settings.signin_token_path.read_text().strip()
        assert new != old
        assert (await client.get("/login", params={"token": old})).status_code == 404
        assert (await client.get("/login", params={"token": new})).status_code == 302
        assert (await client.get("/api/v1/session")).json()["username"] == "admin"
