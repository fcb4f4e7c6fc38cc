"""Sign-in, sessions and their revocation, tried as an attacker would."""

from __future__ import annotations

import base64
import json
import time
from types import SimpleNamespace

import httpx
from litestar.utils.empty import Empty

from digits_gateway.app import create_app
from digits_gateway.identity import SESSION_COOKIE
from digits_gateway.identity._middleware import _authenticate
from digits_gateway.readmodel.db import ReadModel
from digits_gateway.settings import Settings
from tests.gateway.accounts import PASSWORDS, another_client, sign_in
from tests.gateway.conftest import make_settings, running, wait_ready

WRONG = "Wrong username or password"


def gateway_of(client: httpx.AsyncClient):
    """The app's resources behind an in-process client."""
    return client._transport.app.state.gateway


async def test_a_wrong_password_and_an_unknown_user_get_the_same_answer(client) -> None:
    """401 with one message for both, as JSON and as the login page; a right pair signs in."""
    async with another_client(client) as anon:
        answers = []
        for name, password in (("bob", "not-bobs"), ("nobody", "whatever1")):
            r = await anon.post("/api/v1/session", json={"username": name, "password": password})
            answers.append((r.status_code, r.json()))
            page = await anon.post("/login", data={"username": name, "password": password})
            assert page.status_code == 401 and WRONG in page.text
            assert SESSION_COOKIE not in anon.cookies
        assert answers[0] == answers[1] == (401, answers[0][1])
        assert answers[0][1]["error"]["message"] == WRONG
        r = await anon.post("/api/v1/session", json={"username": "bob", "password": "bob-password"})
        assert r.status_code == 200 and r.json() == {"username": "bob", "role": "user"}
        assert r.headers["set-cookie"].lower().count("httponly") == 1
        assert "samesite=lax" in r.headers["set-cookie"].lower()


async def test_failures_grow_the_delay_per_account_and_per_address(client) -> None:
    """Each wrong pair counts against the name and the address; the next try waits 0.1·2^n s."""
    throttle = gateway_of(client).accounts.throttle
    async with another_client(client) as anon:
        for password in ("guess-one", "guess-two", "guess-three"):
            r = await anon.post("/login", data={"username": "bob", "password": password})
            assert r.status_code == 401
    assert throttle.failures("user:bob") == 3
    assert throttle.failures("addr:127.0.0.1") == 3
    assert throttle.delay("bob", "10.1.1.1") == 0.8  # the account, from anywhere
    assert throttle.delay("vera", "127.0.0.1") == 0.8  # the address, on any account
    await sign_in(client, "bob")
    assert throttle.failures("user:bob") == 0


async def test_logout_is_post_only_and_ends_the_session_for_good(client) -> None:
    """GET /logout changes nothing (405); POST /logout signs out, and a copy of the cookie
    taken before (a stolen one) no longer works; nor does one after DELETE /api/v1/session."""
    assert (await client.get("/logout")).status_code == 405
    assert (await client.get("/api/v1/session")).status_code == 200
    copied = client.cookies[SESSION_COOKIE]
    r = await client.post("/logout", params={"next": "/"})
    assert r.status_code == 302
    assert (await client.get("/api/v1/session")).status_code == 401
    async with another_client(client) as thief:
        thief.cookies.set(SESSION_COOKIE, copied)
        assert (await thief.get("/api/v1/session")).status_code == 401
    await sign_in(client, "alice")
    copied = client.cookies[SESSION_COOKIE]
    assert (await client.delete("/api/v1/session")).status_code == 204
    async with another_client(client) as thief:
        thief.cookies.set(SESSION_COOKIE, copied)
        assert (await thief.get("/api/v1/session")).status_code == 401


async def test_a_password_change_revokes_every_other_session(client) -> None:
    """Alice signed in twice changes her password on one: the other is signed out, this one not;
    the old password no longer works."""
    async with another_client(client) as elsewhere:
        await sign_in(elsewhere, "alice")
        r = await client.put(
            "/api/v1/users/me/password", json={"old": PASSWORDS["alice"], "new": "alice-new-pw"}
        )
        assert r.status_code == 204, r.text
        assert (await elsewhere.get("/api/v1/session")).status_code == 401
        assert (await client.get("/api/v1/session")).status_code == 200
        r = await elsewhere.post(
            "/api/v1/session", json={"username": "alice", "password": PASSWORDS["alice"]}
        )
        assert r.status_code == 401
        await sign_in(elsewhere, "alice", "alice-new-pw")


async def test_a_password_change_checks_the_old_one_and_the_length(client) -> None:
    """400 naming `old` for a wrong current password, `new` for one too short."""
    r = await client.put("/api/v1/users/me/password", json={"old": "nope", "new": "long-enough"})
    assert r.status_code == 400 and list(r.json()["errors"]) == ["old"]
    r = await client.put("/api/v1/users/me/password", json={"old": PASSWORDS["alice"], "new": "x"})
    assert r.status_code == 400 and list(r.json()["errors"]) == ["new"]


async def test_disabling_an_account_ends_its_sessions_and_tokens(client) -> None:
    """bob signed in with a cookie and a token; the admin disables him: both 401, and his right
    password no longer signs in; enabled again, he signs in anew."""
    async with another_client(client) as bob, another_client(client) as admin:
        await sign_in(bob, "bob")
        token = (await bob.post("/api/v1/tokens", json={"name": "ci"})).json()["token"]
        bearer = {"Authorization": f"Bearer {token}"}
        assert (await bob.get("/index.json", headers=bearer)).status_code == 200
        await sign_in(admin, "admin")
        r = await admin.patch("/api/v1/users/bob", json={"disabled": True})
        assert r.status_code == 200 and r.json()["disabled"] is True
        assert (await bob.get("/api/v1/session")).status_code == 401
        async with another_client(client) as script:
            assert (await script.get("/index.json", headers=bearer)).status_code == 401
        r = await bob.post(
            "/api/v1/session", json={"username": "bob", "password": PASSWORDS["bob"]}
        )
        assert r.status_code == 401 and r.json()["error"]["message"] == WRONG
        await admin.patch("/api/v1/users/bob", json={"disabled": False})
        await sign_in(bob, "bob")


async def test_a_hand_made_or_tampered_session_cookie_is_refused(client) -> None:
    """A cookie written by hand (claiming admin) or a real one with a byte changed: anonymous."""
    claims = {"u": "admin", "e": 0, "t": int(time.time())}
    forged = base64.b64encode(json.dumps(claims).encode()).decode()
    real = client.cookies[SESSION_COOKIE]
    flipped = real[:20] + ("A" if real[20] != "A" else "B") + real[21:]
    for value in (forged, flipped, "null", "x" * 40):
        async with another_client(client) as attacker:
            attacker.cookies.set(SESSION_COOKIE, value)
            assert (await attacker.get("/api/v1/session")).status_code == 401
            assert (await attacker.get("/api/v1/users")).status_code == 401


async def test_a_username_parameter_never_changes_who_you_are(client) -> None:
    """Alice naming admin in the query, the form or the JSON body stays alice (a user)."""
    r = await client.get("/api/v1/session", params={"username": "admin"})
    assert r.json() == {"username": "alice", "role": "user"}
    r = await client.get("/api/v1/users", params={"username": "admin"})
    assert r.status_code == 403
    r = await client.post(
        "/api/v1/users",
        json={"username": "mallory", "password": "long-enough", "role": "admin"},
        params={"username": "admin"},
    )
    assert r.status_code == 403
    r = await client.post(
        "/datasets/images/classification.json",
        data={"dataset_name": "d", "folder_train": "/d", "username": "bob"},
    )
    assert r.status_code == 200
    job = (await client.get(f"/datasets/{r.json()['id']}.json")).json()
    assert job["username"] == "alice"


async def test_a_bearer_header_ignores_the_cookie(client) -> None:
    """An invalid token with alice's valid session cookie: 401 (token auth only)."""
    r = await client.get("/api/v1/session", headers={"Authorization": "Bearer not-a-token"})
    assert r.status_code == 401


async def test_served_over_https_the_session_cookie_is_secure(nats_url, tmp_path, backend) -> None:
    """DIGITS_GATEWAY_SECURE_COOKIES: the session cookie is Secure, HttpOnly and SameSite=Lax."""
    settings = make_settings(nats_url, tmp_path, secure_cookies=True)
    async with running(create_app(settings)) as client:
        await wait_ready(client)
        r = await client.post(
            "/api/v1/session", json={"username": "bob", "password": PASSWORDS["bob"]}
        )
        assert r.status_code == 200
        cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("session="))
        assert {"secure", "httponly", "samesite=lax"} <= {
            part.strip().lower() for part in cookie.split(";")
        }


async def test_a_session_outlives_a_restart_with_the_read_model_rebuilt(settings, backend) -> None:
    """Gateway stopped, DuckDB deleted, started again: the same cookie is still signed in (the
    key is kept; a session is not dropped while the accounts are being re-projected)."""
    async with running(create_app(settings)) as client:
        await wait_ready(client)
        await sign_in(client, "bob")
        cookie = client.cookies[SESSION_COOKIE]
    settings.readmodel_path.unlink()
    async with running(create_app(settings)) as client:
        client.cookies.set(SESSION_COOKIE, cookie)
        await wait_ready(client)  # /health is polled with the cookie while views rebuild
        assert (await client.get("/api/v1/session")).json() == {"username": "bob", "role": "user"}


def test_a_session_is_not_dropped_while_the_accounts_are_re_projected(tmp_path) -> None:
    """An account not projected yet (read model rebuilding): anonymous for now, cookie kept;
    once ready, the same unknown account's cookie is cleared."""
    db = ReadModel(tmp_path / "readmodel.duckdb")  # empty: nothing projected yet
    gw = SimpleNamespace(db=db, settings=Settings(), readiness=SimpleNamespace(ready=False))
    app = SimpleNamespace(state={"gateway": gw})
    session = {"u": "bob", "e": 0, "t": int(time.time()), "s": "0f"}
    scope: dict = {"app": app, "headers": [], "session": session}
    assert _authenticate(scope) == (None, None) and scope["session"] == session
    gw.readiness.ready = True
    assert _authenticate(scope) == (None, None) and scope["session"] is Empty
    db.close()
