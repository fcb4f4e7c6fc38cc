"""API tokens (shown once, stored hashed, Bearer on every route) and the admin's users API."""

from __future__ import annotations

from digits_gateway.app import create_app
from digits_gateway.identity._secrets import token_hash
from tests.gateway.accounts import another_client, bearer, sign_in
from tests.gateway.conftest import running, wait_ready

DATASET = {"dataset_name": "pets", "folder_train": "/data/pets"}


async def test_tokens_are_created_listed_without_secret_and_revoked(client) -> None:
    """201 with the token once; the list has no secret; after DELETE the token is refused."""
    r = await client.post("/api/v1/tokens", json={"name": "laptop"})
    assert r.status_code == 201
    created = r.json()
    assert set(created) == {"id", "name", "token"} and len(created["token"]) >= 40
    listed = (await client.get("/api/v1/tokens")).json()
    assert [(t["id"], t["name"]) for t in listed] == [(created["id"], "laptop")]
    assert created["token"] not in str(listed) and token_hash(created["token"]) not in str(listed)
    auth = {"Authorization": f"Bearer {created['token']}"}
    async with another_client(client) as script:
        assert (await script.get("/api/v1/session", headers=auth)).json()["username"] == "alice"
        assert (await client.delete(f"/api/v1/tokens/{created['id']}")).status_code == 204
        assert (await script.get("/api/v1/session", headers=auth)).status_code == 401
    assert (await client.get("/api/v1/tokens")).json() == []
    assert (await client.delete(f"/api/v1/tokens/{created['id']}")).status_code == 404


async def test_a_token_works_on_digits_json_routes_without_cookie_or_csrf(client) -> None:
    """A DIGITS-era script adds one header: it creates a dataset and reads it back."""
    auth = await bearer(client, "bob")
    async with another_client(client) as script:
        r = await script.post("/datasets/images/classification.json", data=DATASET, headers=auth)
        assert r.status_code == 200, r.text
        job = (await script.get(f"/datasets/{r.json()['id']}.json", headers=auth)).json()
        assert job["username"] == "bob"
        assert (await script.get("/index.json")).status_code == 401


async def test_one_cannot_revoke_anothers_token(client) -> None:
    """Bob's token id is unknown to alice (404) and keeps working."""
    async with another_client(client) as bob:
        await sign_in(bob, "bob")
        token = (await bob.post("/api/v1/tokens", json={"name": "b"})).json()
        assert (await client.delete(f"/api/v1/tokens/{token['id']}")).status_code == 404
        assert [t["id"] for t in (await bob.get("/api/v1/tokens")).json()] == [token["id"]]


async def test_token_names_are_checked(client) -> None:
    """400 naming `name` when empty or missing; unknown fields are refused."""
    for body in ({"name": ""}, {}, {"name": "x", "scope": "all"}):
        r = await client.post("/api/v1/tokens", json=body)
        assert r.status_code == 400, body


async def test_only_admins_manage_accounts(client) -> None:
    """A user and a viewer get 403 on the users API; the admin gets the list."""
    auth = await bearer(client, "vera")
    async with another_client(client) as vera:
        assert (await vera.get("/api/v1/users", headers=auth)).status_code == 403
        r = await vera.patch("/api/v1/users/vera", json={"role": "admin"}, headers=auth)
        assert r.status_code == 403
    assert (await client.get("/api/v1/users")).status_code == 403
    r = await client.patch("/api/v1/users/alice", json={"role": "admin"})
    assert r.status_code == 403
    async with another_client(client) as admin:
        await sign_in(admin, "admin")
        names = [u["username"] for u in (await admin.get("/api/v1/users")).json()]
        assert names == ["admin", "alice", "bob", "vera"]


async def test_the_admin_opens_and_changes_accounts(client) -> None:
    """201 for carol; 409 for a taken name; 400 naming the field for a bad name, a short
    password or an unknown role; carol signs in and her new role shows; 404 for nobody."""
    async with another_client(client) as admin:
        await sign_in(admin, "admin")
        new = {"username": "carol", "password": "carol-password", "role": "user"}
        r = await admin.post("/api/v1/users", json=new)
        assert r.status_code == 201, r.text
        assert r.json()["username"] == "carol" and r.json()["created_by"] == "admin"
        assert (await admin.post("/api/v1/users", json=new)).status_code == 409
        for field, value in (("username", "Carol Two"), ("password", "short"), ("role", "root")):
            r = await admin.post("/api/v1/users", json={**new, "username": "dan", field: value})
            assert r.status_code == 400 and list(r.json()["errors"]) == [field], r.text
        r = await admin.patch("/api/v1/users/carol", json={"role": "viewer"})
        assert r.status_code == 200 and r.json()["role"] == "viewer"
        assert (await admin.patch("/api/v1/users/nobody", json={"role": "user"})).status_code == 404
        r = await admin.patch("/api/v1/users/admin", json={"role": "user"})
        assert r.status_code == 409
    async with another_client(client) as carol:
        await sign_in(carol, "carol", "carol-password")
        assert (await carol.get("/api/v1/session")).json() == {
            "username": "carol",
            "role": "viewer",
        }
        r = await carol.post("/datasets/images/classification.json", data=DATASET)
        assert r.status_code == 403


async def test_the_users_view_is_rebuilt_equal_from_the_stream(settings, backend) -> None:
    """Gateway stopped, DuckDB deleted, started again: users and tokens read as before."""
    async with running(create_app(settings)) as client:
        await wait_ready(client)
        await sign_in(client, "admin")
        await client.post("/api/v1/users", json={"username": "carol", "password": "carol-password"})
        await client.patch("/api/v1/users/bob", json={"disabled": True, "role": "viewer"})
        await client.post("/api/v1/tokens", json={"name": "one"})
        second = (await client.post("/api/v1/tokens", json={"name": "two"})).json()
        await client.delete(f"/api/v1/tokens/{second['id']}")
        before = [(await client.get(p)).json() for p in ("/api/v1/users", "/api/v1/tokens")]
    settings.readmodel_path.unlink()
    async with running(create_app(settings)) as client:
        await wait_ready(client)
        await sign_in(client, "admin")
        after = [(await client.get(p)).json() for p in ("/api/v1/users", "/api/v1/tokens")]
    assert after == before
    assert [u["username"] for u in before[0]] == ["admin", "alice", "bob", "carol", "vera"]
    assert [t["name"] for t in before[1]] == ["one"]


async def test_a_wildcard_or_odd_username_is_no_account(client) -> None:
    """PATCH on `*`, `>` or a spaced name is 404 (it never reaches a NATS subject filter)."""
    async with another_client(client) as admin:
        await sign_in(admin, "admin")
        for name in ("*", ">", "a b", "alice.*", "x" * 65):
            r = await admin.patch(f"/api/v1/users/{name}", json={"role": "viewer"})
            assert r.status_code == 404, (name, r.text)
        users = {u["username"]: u["role"] for u in (await admin.get("/api/v1/users")).json()}
        assert users == {"admin": "admin", "alice": "user", "bob": "user", "vera": "viewer"}


async def test_a_huge_password_is_refused_without_hashing(client) -> None:
    """A megabyte password: 401 at sign-in, 400 naming `password` when opening an account."""
    huge = "p" * 1_000_000
    async with another_client(client) as anon:
        r = await anon.post("/login", data={"username": "bob", "password": huge})
        assert r.status_code == 401
    async with another_client(client) as admin:
        await sign_in(admin, "admin")
        r = await admin.post("/api/v1/users", json={"username": "dan", "password": huge})
        assert r.status_code == 400 and list(r.json()["errors"]) == ["password"]


async def test_the_admin_sets_a_forgotten_password(client) -> None:
    """PATCH {password}: bob's sessions end, the new password signs in, the old does not; too
    short is a 400 naming `password`; the page's form does the same."""
    async with another_client(client) as bob, another_client(client) as admin:
        await sign_in(bob, "bob")
        await sign_in(admin, "admin")
        r = await admin.patch("/api/v1/users/bob", json={"password": "x"})
        assert r.status_code == 400 and list(r.json()["errors"]) == ["password"]
        r = await admin.patch("/api/v1/users/bob", json={"password": "bob-new-password"})
        assert r.status_code == 200
        assert (await bob.get("/api/v1/session")).status_code == 401
        await sign_in(bob, "bob", "bob-new-password")
        r = await admin.post("/admin/users/bob", data={"password": "bob-third-password"})
        assert r.status_code == 303
        await sign_in(bob, "bob", "bob-third-password")
