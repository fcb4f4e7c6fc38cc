"""Test accounts: admin, alice and bob (users), vera (viewer), opened through their events, and
clients signed in for real (session cookie + CSRF header) or with a Bearer token."""

from __future__ import annotations

import contextlib
import functools
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
from nats.js import JetStreamContext

from digits_gateway.identity import AccountStore
from digits_gateway.identity import _domain as domain
from digits_gateway.identity._secrets import hash_password, new_token, token_hash
from digits_proto.base import Role
from digits_proto.stamps import live

PASSWORDS = {
    "admin": "admin-password",
    "alice": "alice-password",
    "bob": "bob-password",
    "vera": "vera-password",
}
ROLES = {"admin": Role.ADMIN, "alice": Role.USER, "bob": Role.USER, "vera": Role.VIEWER}


@functools.cache
def password_hash(name: str) -> str:
    """One argon2 hash per test session and account (hashing is deliberately slow)."""
    return hash_password(PASSWORDS[name])


async def seed_accounts(js: JetStreamContext) -> None:
    """Open the four test accounts as UserCreated events (as the first start and an admin would)."""
    store = AccountStore(js)
    for name, role in ROLES.items():
        actor = "" if name == "admin" else "admin"
        digest = password_hash(name)
        state, _ = await store.load(name)
        if state is None:
            await store.update(
                name,
                lambda s, n=name, r=role, h=digest, a=actor: domain.create(s, n, r, h, a, live()),
            )


def _send_csrf(client: httpx.AsyncClient) -> Any:
    async def hook(request: httpx.Request) -> None:
        token = client.cookies.get("csrftoken")
        if token and request.method not in ("GET", "HEAD", "OPTIONS"):
            request.headers["x-csrftoken"] = token

    return hook


def with_csrf(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """Send the CSRF cookie back as the header on state changes, as the web UI's JS does."""
    client.event_hooks["request"].append(_send_csrf(client))
    return client


def another_client(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """A second client to the same gateway, with no cookies of its own."""
    return with_csrf(httpx.AsyncClient(transport=client._transport, base_url=str(client.base_url)))


async def sign_in(client: httpx.AsyncClient, name: str, password: str | None = None) -> None:
    """Sign `client` in as `name` with its password (session cookie), and fetch a CSRF cookie."""
    r = await client.post(
        "/api/v1/session", json={"username": name, "password": password or PASSWORDS[name]}
    )
    assert r.status_code == 200, r.text
    assert (await client.get("/api/v1/session")).status_code == 200


async def bearer(client: httpx.AsyncClient, name: str) -> dict[str, str]:
    """An `Authorization` header with a fresh API token of `name` (issued through the API)."""
    async with another_client(client) as other:
        await sign_in(other, name)
        r = await other.post("/api/v1/tokens", json={"name": f"{name}-test"})
        assert r.status_code == 201, r.text
        return {"Authorization": f"Bearer {r.json()['token']}"}


@contextlib.asynccontextmanager
async def live_client(url: str, name: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a gateway served on `url`, signed in as `name`."""
    async with httpx.AsyncClient(base_url=url) as client:
        await sign_in(with_csrf(client), name)
        yield client


async def seed_token(js: JetStreamContext, name: str) -> dict[str, str]:
    """An API token of `name` issued as its TokenIssued event (for a gateway not yet ready to
    sign anyone in); the `Authorization` header that carries it."""
    token = new_token()
    digest = token_hash(token)
    await AccountStore(js).update(
        name, lambda s: domain.issue_token(s, name, uuid.uuid4().hex[:16], "seeded", digest, live())
    )
    return {"Authorization": f"Bearer {token}"}
