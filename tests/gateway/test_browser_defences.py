"""Browser-side attacks on the gateway, each performed: cross-site POSTs, missing CSRF tokens,
state changes by GET, foreign Host headers, missing security headers, request floods."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import stat
from pathlib import Path

import httpx

from digits_gateway import access, security
from digits_gateway.app import create_app
from digits_gateway.settings import Settings
from digits_proto.runtime import env_settings
from tests.gateway.accounts import another_client, bearer, sign_in
from tests.gateway.conftest import make_settings, running, wait_ready

DATASET = {"name": "pets", "folder_train": "/data/pets"}
FORM = {"dataset_name": "pets", "folder_train": "/data/pets"}


async def count_datasets(client: httpx.AsyncClient) -> int:
    return len((await client.get("/api/v1/datasets")).json()["jobs"])


async def test_a_cross_site_post_is_refused_even_with_cookie_and_token(client) -> None:
    """Another site's form (Origin or Referer of that site, `null` from a sandbox) is refused
    although the browser sends alice's session cookie and the CSRF token were guessed right."""
    for headers in (
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Referer": "https://evil.example/attack.html"},
        {"Origin": "http://gateway.evil.example"},
    ):
        r = await client.post("/datasets/images/classification.json", data=FORM, headers=headers)
        assert r.status_code == 403, headers
        assert "Cross-site request refused" in r.text
    assert await count_datasets(client) == 0
    r = await client.post(
        "/datasets/images/classification.json", data=FORM, headers={"Origin": "http://gateway"}
    )
    assert r.status_code == 200 and await count_datasets(client) == 1


async def test_a_cross_site_sign_in_is_refused(client) -> None:
    """Login CSRF: another site's form signing the victim's browser into the attacker's account."""
    async with another_client(client) as victim:
        r = await victim.post(
            "/login",
            data={"username": "bob", "password": "bob-password"},
            headers={"Origin": "https://evil.example"},
        )
        assert r.status_code == 403 and "session" not in victim.cookies
        r = await victim.post("/login", data={"username": "bob", "password": "bob-password"})
        assert r.status_code == 302 and "session" in victim.cookies


async def test_a_session_post_needs_the_csrf_token_a_bearer_one_does_not(client) -> None:
    """Cookie-authenticated: no token (or a wrong one) → 403; the token as form field or header
    → accepted. A Bearer request carries no cookie a browser could send: no token needed."""
    token = client.cookies["csrftoken"]
    forged = httpx.AsyncClient(transport=client._transport, base_url="http://gateway")
    async with forged:
        forged.cookies = client.cookies  # the victim's cookies, as a browser attaches them
        r = await forged.post("/api/v1/datasets", json=DATASET)
        assert r.status_code == 403 and "CSRF" in r.text
        r = await forged.post("/api/v1/datasets", json=DATASET, headers={"x-csrftoken": "0" * 128})
        assert r.status_code == 403
        assert await count_datasets(client) == 0
        r = await forged.post(
            "/datasets/images/classification.json", data={**FORM, "_csrf_token": token}
        )
        assert r.status_code == 200
        r = await forged.post("/api/v1/datasets", json=DATASET, headers={"x-csrftoken": token})
        assert r.status_code == 202
    auth = await bearer(client, "bob")
    async with another_client(client) as script:
        r = await script.post("/api/v1/datasets", json=DATASET, headers=auth)
        assert r.status_code == 202 and "csrftoken" not in script.cookies
    assert await count_datasets(client) == 3


async def test_a_jobs_saved_form_keeps_no_csrf_token_and_its_clone_carries_its_own(client) -> None:
    """The form a job keeps for clone is read by every signed-in user: alice's CSRF token is not
    in it, and bob's clone (his own session, his own token) is accepted, not refused by hers."""
    token = client.cookies["csrftoken"]
    r = await client.post(
        "/datasets/images/classification.json", data={**FORM, "_csrf_token": token}
    )
    assert r.status_code == 200
    job_id = r.json()["id"]
    async with another_client(client) as bob:
        await sign_in(bob, "bob")
        saved = (await bob.get(f"/datasets/{job_id}.json")).json()["form"]
        assert saved["folder_train"] == "/data/pets" and "_csrf_token" not in saved
        r = await bob.post(
            "/datasets/images/classification.json",
            data={**saved, "clone": job_id, "_csrf_token": bob.cookies["csrftoken"]},
        )
        assert r.status_code == 200, r.text
    assert await count_datasets(client) == 2


async def test_get_never_changes_state(client) -> None:
    """GET /logout and GET to_pretrained are 405 (and alice is still signed in); no GET route
    in the table needs ownership, the mark of a state change."""
    assert (await client.get("/logout")).status_code == 405
    assert (await client.get("/api/v1/session")).json()["username"] == "alice"
    assert (await client.get("/models/20260101-000000-abcd/to_pretrained")).status_code == 405
    owned_by_get = [
        p for p, methods in access.POLICY.items() if methods.get("GET") is access.Access.OWNER
    ]
    assert owned_by_get == []


async def test_a_foreign_host_header_is_refused(client) -> None:
    """DNS rebinding: a page of evil.example resolving to this machine sends its own Host."""
    for host in ("evil.example", "evil.example:5000", "gateway.evil.example"):
        r = await client.get("/health", headers={"Host": host})
        assert r.status_code == 400, host
        r = await client.get("/api/v1/jobs", headers={"Host": host})
        assert r.status_code == 400, host
    assert (await client.get("/api/v1/jobs")).status_code == 200


def test_allowed_hosts_default_to_loopback_and_the_bind_address() -> None:
    """Unset: localhost, 127.0.0.1, [::1] and a named bind address, each with the port; a
    wildcard bind adds nothing; DIGITS_ALLOWED_HOSTS replaces the list."""
    hosts = security.allowed_hosts(Settings()).allowed_hosts
    assert set(hosts) == {
        "localhost",
        "localhost:5000",
        "127.0.0.1",
        "127.0.0.1:5000",
        "[::1]",
        "[::1]:5000",
    }
    assert "0.0.0.0" not in security.allowed_hosts(Settings(host="0.0.0.0")).allowed_hosts
    assert "10.0.0.5:5000" in security.allowed_hosts(Settings(host="10.0.0.5")).allowed_hosts
    env = {"DIGITS_ALLOWED_HOSTS": "digits.lab.example, [::1]", "DIGITS_PORT": "8080"}
    configured = env_settings(
        Settings, "gateway", env, aliases={"allowed_hosts": "DIGITS_ALLOWED_HOSTS"}
    )
    assert set(security.allowed_hosts(configured).allowed_hosts) == {
        "digits.lab.example",
        "digits.lab.example:5000",
        "[::1]",
        "[::1]:5000",
    }
    assert Settings().host == "127.0.0.1"


def csp_sources(policy: str) -> dict[str, list[str]]:
    return {d.split()[0]: d.split()[1:] for d in (p.strip() for p in policy.split(";")) if d}


async def test_every_response_has_the_security_headers(client) -> None:
    """Pages, JSON, static files, 404s and the login page all carry CSP, frame and sniffing
    defences; the page's one inline script (the import map) is allowed by its exact hash."""
    anonymous = another_client(client)
    async with anonymous:
        responses = [
            await client.get("/"),
            await client.get("/api/v1/jobs"),
            await client.get("/static/css/app.css"),
            await client.get("/no/such/page"),
            await anonymous.get("/login"),
        ]
    for r in responses:
        assert r.headers["x-frame-options"] == "DENY", r.url
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "same-origin"
        policy = csp_sources(r.headers["content-security-policy"])
        assert policy["frame-ancestors"] == ["'none'"] and policy["object-src"] == ["'none'"]
        assert "'unsafe-inline'" not in r.headers["content-security-policy"]
    page = responses[0].text
    inline = re.findall(r"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", page, re.S)
    assert len(inline) == 1  # the import map, nothing else
    digest = base64.b64encode(hashlib.sha256(inline[0].encode()).digest()).decode()
    scripts = csp_sources(responses[0].headers["content-security-policy"])["script-src"]
    assert scripts == ["'self'", f"'sha256-{digest}'"]
    assert not re.search(r"\sstyle=|\son[a-z]+=", page)


async def test_a_flood_is_answered_429_with_retry_after(nats_url, tmp_path: Path, backend) -> None:
    """Past the per-account limit: 429 naming the limit, with Retry-After; another account and
    /health are unaffected. Sign-in POSTs have their own, tighter limit per address."""
    settings = make_settings(
        nats_url, tmp_path, rate_limit_per_minute=5, sign_in_rate_limit_per_minute=4
    )
    async with running(create_app(settings)) as alice:
        await wait_ready(alice)
        await sign_in(alice, "alice")
        statuses = [(await alice.get("/index.json")).status_code for _ in range(8)]
        first_429 = statuses.index(429)
        assert 1 <= first_429 <= 5 and set(statuses[first_429:]) == {429}
        r = await alice.get("/index.json")
        assert int(r.headers["retry-after"]) >= 1
        assert "5 per minute" in r.json()["error"]["message"]
        assert (await alice.get("/health")).status_code == 200
        assert (await alice.get("/static/css/app.css")).status_code == 200  # pages need them
        async with another_client(alice) as bob:
            await sign_in(bob, "bob")
            assert (await bob.get("/index.json")).status_code == 200
            wrong = {"username": "bob", "password": "guess"}
            tries = [(await bob.post("/api/v1/session", json=wrong)).status_code for _ in range(3)]
            assert tries == [401, 401, 429]  # bob's and alice's sign-ins came first
            assert "retry-after" in (await bob.post("/api/v1/session", json=wrong)).headers


def test_the_csrf_secret_is_generated_once_and_private(tmp_path: Path) -> None:
    """Kept 0600 beside the read model, so tokens in open browsers survive a restart."""
    settings = Settings(data_dir=str(tmp_path))
    first = security.csrf_secret(settings)
    assert security.csrf_secret(settings) == first and len(first) == 64
    path = tmp_path / "gateway" / "csrf.secret"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert security.csrf_secret(Settings(data_dir=str(tmp_path), csrf_secret="x" * 40)) == "x" * 40
