"""The sign-in, account and admin users pages: plain forms over the same use cases."""

from __future__ import annotations

import re

from tests.gateway.accounts import PASSWORDS, another_client, sign_in


async def test_the_login_page_asks_for_a_password(client) -> None:
    """GET /login: username and password fields, the CSRF field, no 'there is no password'."""
    async with another_client(client) as anon:
        page = (await anon.get("/login", params={"next": "/models"})).text
    assert 'name="password"' in page and 'type="password"' in page
    assert 'name="_csrf_token"' in page and "There is no password" not in page


async def test_the_account_page_creates_shows_once_and_revokes_a_token(client) -> None:
    """The new token is on the page once; it works as Bearer; revoking it (303) ends it."""
    page = await client.get("/account")
    assert page.status_code == 200 and "No tokens." in page.text
    r = await client.post("/account/tokens", data={"name": "notebook"})
    assert r.status_code == 200
    token = re.search(r'id="new-token-value"[^>]*value="([^"]+)"', r.text).group(1)
    auth = {"Authorization": f"Bearer {token}"}
    page = (await client.get("/account")).text
    assert "notebook" in page and token not in page
    token_id = re.search(r"/account/tokens/([0-9a-f]+)/revoke", page).group(1)
    async with another_client(client) as script:
        assert (await script.get("/api/v1/session", headers=auth)).status_code == 200
        r = await client.post(f"/account/tokens/{token_id}/revoke")
        assert (r.status_code, r.headers["location"]) == (303, "/account")
        assert (await script.get("/api/v1/session", headers=auth)).status_code == 401


async def test_the_account_page_changes_the_password(client) -> None:
    """A wrong current password re-renders with the error (400); a right one says so (200)."""
    r = await client.post("/account/password", data={"old": "wrong", "new": "new-password-1"})
    assert r.status_code == 400 and "The current password is wrong" in r.text
    r = await client.post(
        "/account/password", data={"old": PASSWORDS["alice"], "new": "new-password-1"}
    )
    assert r.status_code == 200 and "Password changed." in r.text
    assert (await client.get("/account")).status_code == 200  # this session was renewed


async def test_the_users_page_is_the_admins(client) -> None:
    """Alice gets 403; the admin opens carol, makes her a viewer, disables her."""
    assert (await client.get("/admin/users")).status_code == 403
    assert (await client.post("/admin/users", data={"username": "x"})).status_code == 403
    async with another_client(client) as admin:
        await sign_in(admin, "admin")
        page = await admin.get("/admin/users")
        assert page.status_code == 200 and 'data-username="vera"' in page.text
        assert 'href="/admin/users"' in page.text  # the admin's nav shows the page
        r = await admin.post("/admin/users", data={"username": "Bad", "password": "p"})
        assert r.status_code == 400 and "Start with a lowercase letter" in r.text
        new = {"username": "carol", "password": "carol-password", "role": "user"}
        r = await admin.post("/admin/users", data=new)
        assert (r.status_code, r.headers["location"]) == (303, "/admin/users")
        assert (await admin.post("/admin/users", data=new)).status_code == 400  # taken
        assert (await admin.post("/admin/users/carol", data={"role": "viewer"})).status_code == 303
        assert (
            await admin.post("/admin/users/carol", data={"disabled": "true"})
        ).status_code == 303
        users = {u["username"]: u for u in (await admin.get("/api/v1/users")).json()}
        assert (users["carol"]["role"], users["carol"]["disabled"]) == ("viewer", True)
